"""Timers on the event clock: which users' stages fall due as a partition's time moves on."""

from __future__ import annotations

import heapq

from pipeline.domain.stages import StageRules, change_points
from pipeline.domain.state import UserState


def next_due(state: UserState, rules: StageRules, after_ms: int) -> int | None:
    """The first time after `after_ms` at which the user's stage may change with no event."""
    for point in change_points(
        rules, state.last_interaction_ms, state.recent_interactions_ms, state.first_paid_ms
    ):
        if point > after_ms:
            return point
    return None


class DueTimers:
    """A heap of (due time, user) per partition, keeping only each user's latest schedule.

    Superseded entries stay in the heap until popped (cheap); when they outnumber live ones
    three to one the heap is rebuilt, so memory stays proportional to users.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._due: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, user_id: str, due_ms: int | None) -> None:
        if due_ms is None:
            self._due.pop(user_id, None)
            return
        if self._due.get(user_id) == due_ms:
            return
        self._due[user_id] = due_ms
        heapq.heappush(self._heap, (due_ms, user_id))
        if len(self._heap) > 3 * len(self._due) + 64:
            self._heap = [(due, user) for user, due in self._due.items()]
            heapq.heapify(self._heap)

    def pop_due(self, clock_ms: int) -> list[str]:
        """Users whose scheduled time is at or before `clock_ms`, each once."""
        out: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= clock_ms:
            due, user_id = heapq.heappop(heap)
            if self._due.get(user_id) == due:
                del self._due[user_id]
                out.append(user_id)
        return out
