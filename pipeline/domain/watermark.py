"""The event clock of one partition number across the input topics that share it.

The topics are read at different speeds (a backlog of live events next to a few chats), so
the latest time seen on one of them says nothing about the others. The clock is the least of
the latest times of the topics that still have records waiting; a topic that is caught up
does not hold it back. Time-driven stage changes use this clock, so a catch-up replay does
not mark users silent because one topic ran ahead of another.
"""

from __future__ import annotations

import heapq
from typing import Any


class PartitionClock:
    """`expected` topics hold the clock until each is seen or known to be caught up (after a
    restart, a topic read ahead of the others must not push the clock past their backlog)."""

    def __init__(self, expected: tuple[str, ...] = ()) -> None:
        self._latest: dict[str, int] = {}
        self._waiting: dict[str, bool] = {}
        self.unknown: set[str] = set(expected)

    def give_up_unknown(self) -> int | None:
        """Stop waiting for topics not seen yet; returns the clock."""
        self.unknown.clear()
        return self.value()

    def resolve(self, topic: str) -> None:
        """The topic has nothing waiting: it no longer holds the clock."""
        self.unknown.discard(topic)

    def observe(self, topic: str, ts_ms: int, more_waiting: bool) -> None:
        latest = self._latest.get(topic)
        self._latest[topic] = ts_ms if latest is None else max(latest, ts_ms)
        self._waiting[topic] = more_waiting
        self.unknown.discard(topic)

    def value(self) -> int | None:
        if not self._latest or self.unknown:
            return None
        behind = [ts for topic, ts in self._latest.items() if self._waiting[topic]]
        return min(behind) if behind else max(self._latest.values())


class MergeBuffer:
    """Events of one partition number, held until the partition clock passes them.

    Released in event-time order (ties in arrival order), so a user's live, chat, order and
    touch events are applied in the order they happened even when one topic is read ahead of
    another. `oldest_arrival` lets the caller release everything after a maximum hold.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, float, Any]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def waited_since(self, moment: float) -> bool:
        """Whether anything held arrived before `moment`."""
        return any(entry[2] < moment for entry in self._heap)

    def push(self, ts_ms: int, item: Any, arrived: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ts_ms, self._seq, arrived, item))

    def release(self, clock_ms: int | None, hold_until: float | None = None) -> list[Any]:
        """Items with event time at or before the clock; all of them once the oldest arrival
        is before `hold_until` (a bound on how long anything waits)."""
        out: list[Any] = []
        heap = self._heap
        if hold_until is not None and heap and min(entry[2] for entry in heap) < hold_until:
            clock_ms = None
            out = [heapq.heappop(heap)[3] for _ in range(len(heap))]
            return out
        while heap and clock_ms is not None and heap[0][0] <= clock_ms:
            out.append(heapq.heappop(heap)[3])
        return out

    def clear(self) -> list[Any]:
        items = [entry[3] for entry in sorted(self._heap)]
        self._heap.clear()
        return items
