"""The event clock of one partition number across the input topics that share it.

The topics are read at different speeds (a backlog of live events next to a few chats), so
the latest time seen on one of them says nothing about the others. The clock is the least of
the latest times of the topics that still have records waiting; a topic that is caught up
does not hold it back. Time-driven stage changes use this clock, so a catch-up replay does
not mark users silent because one topic ran ahead of another.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any


class PartitionClock:
    """`expected` topics hold the clock until each is seen or known to be caught up (after a
    restart, a topic read ahead of the others must not push the clock past their backlog).

    A topic read to its end still holds the clock at its latest time until it has been quiet
    for `caught_up_hold_s` (wall seconds, given as `now`) since it was read to its end and
    since the arrival (`since`) of the record asking: a producer writes the four topics one
    after another, so when one of them brings a record, the others' records of the same moment
    may be landing right now. A topic known to be caught up but not seen since this worker got
    the partition holds everything (its latest time is unknown) for as long.

    Quiet is what a fetch saw, not what the wall clock says: once the consumer reports when
    it last fetched a topic (`polled`), the topic lets go only after a fetch answered at least
    the hold after that moment found nothing new. A worker that could not fetch meanwhile (its
    loop busy with a checkpoint, the process waiting for a core, the topic paused) has seen
    nothing, and a producer may have written plenty.
    """

    def __init__(self, expected: tuple[str, ...] = (), caught_up_hold_s: float = 0.0) -> None:
        self._latest: dict[str, int] = {}
        self._waiting: dict[str, bool] = {}
        self._caught_up_at: dict[str, float] = {}
        self._polled_at: dict[str, float] = {}
        self.unknown: set[str] = set(expected)
        self.hold_s = caught_up_hold_s

    def give_up_unknown(self) -> int | None:
        """Stop waiting for topics not seen yet; returns the clock."""
        self.unknown.clear()
        return self.value()

    def resolve(self, topic: str, now: float = 0.0) -> None:
        """The topic has nothing waiting: it no longer holds the clock (after the hold)."""
        self.unknown.discard(topic)
        if topic not in self._waiting:
            self._waiting[topic] = False
            self._caught_up_at[topic] = now

    def observe(self, topic: str, ts_ms: int, more_waiting: bool, now: float = 0.0) -> None:
        latest = self._latest.get(topic)
        self._latest[topic] = ts_ms if latest is None else max(latest, ts_ms)
        self.unknown.discard(topic)
        self._waiting[topic] = more_waiting
        if more_waiting:
            self._caught_up_at.pop(topic, None)
        else:  # read to its end just now: the hold starts again
            self._caught_up_at[topic] = now

    def polled(self, topic: str, at: float) -> None:
        """The consumer's last fetch of the topic was answered at `at` (as `now`)."""
        self._polled_at[topic] = at

    def set_waiting(self, topic: str, more_waiting: bool, now: float = 0.0) -> None:
        """Whether the topic has records not read yet, learnt from its high watermark without
        a new record."""
        if topic not in self._waiting:
            return
        was_waiting = self._waiting[topic]
        self._waiting[topic] = more_waiting
        if more_waiting:
            self._caught_up_at.pop(topic, None)
        elif was_waiting:
            self._caught_up_at[topic] = now

    def value(self, now: float = 0.0, since: float | None = None) -> int | None:
        """The clock for a record that arrived at `since` (None: only the catch-up counts).

        A topic read to its end is not assumed to bring only new records: a producer may be
        writing history (a file, a backfill) that lands on it a moment later, so it holds
        until it has been quiet for the hold, whatever the wall clock says."""
        if not self._latest or self.unknown:
            return None
        bounds: list[int] = []
        for topic, waiting in self._waiting.items():
            if not waiting:
                quiet_from = self._caught_up_at.get(topic, now)
                if since is not None:
                    quiet_from = max(quiet_from, since)
                seen_to = self._polled_at.get(topic, now)
                if seen_to - quiet_from >= self.hold_s:
                    continue
            latest = self._latest.get(topic)
            if latest is None:
                return None  # may still bring anything: hold everything
            bounds.append(latest)
        return min(bounds) if bounds else max(self._latest.values())


class MergeBuffer:
    """Events of one partition number, held until the partition clock passes them.

    Released in event-time order (ties in arrival order), so a user's live, chat, order and
    touch events are applied in the order they happened even when one topic is read ahead of
    another. `oldest_arrival` lets the caller release everything after a maximum hold.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, float, Any]] = []
        self._seq = 0
        # Held events per arrival time: a batch's events share one, so there are few.
        self._arrivals: dict[float, int] = {}

    def __len__(self) -> int:
        return len(self._heap)

    def oldest_arrival(self) -> float | None:
        return min(self._arrivals) if self._arrivals else None

    def waited_since(self, moment: float) -> bool:
        """Whether anything held arrived before `moment`."""
        oldest = self.oldest_arrival()
        return oldest is not None and oldest < moment

    def items(self) -> Iterator[Any]:
        """The items held, in no particular order."""
        return (entry[3] for entry in self._heap)

    def push(self, ts_ms: int, item: Any, arrived: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ts_ms, self._seq, arrived, item))
        self._arrivals[arrived] = self._arrivals.get(arrived, 0) + 1

    def _gone(self, arrived: float) -> None:
        left = self._arrivals[arrived] - 1
        if left:
            self._arrivals[arrived] = left
        else:
            del self._arrivals[arrived]

    def release_while(
        self, ready: Callable[[int, float], bool], hold_until: float | None = None
    ) -> list[tuple[int, Any]]:
        """(event time, item) in event-time order while `ready(ts, arrival)` holds for the
        oldest; all of them once the oldest arrival is before `hold_until`."""
        heap = self._heap
        if hold_until is not None and self.waited_since(hold_until):
            everything = [(entry[0], entry[3]) for entry in sorted(heap)]
            heap.clear()
            self._arrivals.clear()
            return everything
        out: list[tuple[int, Any]] = []
        while heap and ready(heap[0][0], heap[0][2]):
            entry = heapq.heappop(heap)
            self._gone(entry[2])
            out.append((entry[0], entry[3]))
        return out

    def clear(self) -> list[Any]:
        items = [entry[3] for entry in sorted(self._heap)]
        self._heap.clear()
        self._arrivals.clear()
        return items
