"""The event clock of one partition number across the input topics that share it.

The topics are read at different speeds (a backlog of live events next to a few chats), so
the latest time seen on one of them says nothing about the others. The clock is the least of
the latest times of the topics that still have records waiting; a topic that is caught up
does not hold it back. Time-driven stage changes use this clock, so a catch-up replay does
not mark users silent because one topic ran ahead of another.
"""

from __future__ import annotations


class PartitionClock:
    def __init__(self) -> None:
        self._latest: dict[str, int] = {}
        self._waiting: dict[str, bool] = {}

    def observe(self, topic: str, ts_ms: int, more_waiting: bool) -> None:
        latest = self._latest.get(topic)
        self._latest[topic] = ts_ms if latest is None else max(latest, ts_ms)
        self._waiting[topic] = more_waiting

    def value(self) -> int | None:
        if not self._latest:
            return None
        behind = [ts for topic, ts in self._latest.items() if self._waiting[topic]]
        return min(behind) if behind else max(self._latest.values())
