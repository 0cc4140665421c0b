"""The event clocks of a worker's input partitions: each partition's watermark
(`pipeline.stream.watermark`) and the due times of its users' idle stage changes
(`pipeline.domain.timers`), which the idle sweep pops as the watermark passes them.

Both are rebuilt from the users' state: a partition's timers the first time it is used in this
process, its watermark from the latest event its users have when the partition is adopted.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.domain.stages import StageRules
from pipeline.domain.state import UserState
from pipeline.domain.timers import DueTimers, next_due
from pipeline.store import UserStore
from pipeline.stream.watermark import PartitionWatermark

# Called with a partition and its users the first time the partition is used in this process.
FirstUse = Callable[[int, list[UserState]], None]


class PartitionClocks:
    """Watermark and stage timers per input partition number (of `topics`, all partitioned
    alike); users come from `store`, due times from `rules`."""

    def __init__(
        self,
        topics: tuple[str, ...],
        rules: StageRules,
        store: UserStore,
        on_first_use: FirstUse,
    ) -> None:
        self.topics = topics
        self.rules = rules
        self.store = store
        self.on_first_use = on_first_use
        self.watermarks: dict[int, PartitionWatermark] = {}
        self._timers: dict[int, DueTimers] = {}

    def watermark(self, partition: int) -> PartitionWatermark:
        watermark = self.watermarks.get(partition)
        if watermark is None:
            watermark = self.watermarks[partition] = PartitionWatermark(self.topics)
        return watermark

    def value(self, partition: int) -> int | None:
        """The partition's watermark in epoch ms, None before any event."""
        watermark = self.watermarks.get(partition)
        return None if watermark is None else watermark.value()

    def timers(self, partition: int) -> DueTimers:
        """The partition's stage timers; built from its users the first time the partition
        is used in this process (`on_first_use` sees them then)."""
        timers = self._timers.get(partition)
        if timers is None:
            timers = self._timers[partition] = DueTimers()
            users = list(self.store.users_of(partition))
            self.on_first_use(partition, users)
            for user in users:
                settled = max(user.stage_since_ms or 0, user.clock_ms or 0)
                timers.schedule(user.user_id, next_due(user, self.rules, settled))
        return timers

    def schedule(self, partition: int, user: UserState, after_ms: int) -> None:
        """The user's next idle stage change after `after_ms` (epoch ms), if any."""
        self.timers(partition).schedule(user.user_id, next_due(user, self.rules, after_ms))

    def unschedule(self, partition: int, user_id: str) -> None:
        timers = self._timers.get(partition)
        if timers is not None:
            timers.schedule(user_id, None)

    def adopt(self, partition: int) -> None:
        """The partition's users were loaded into the store: schedule them now, and start the
        partition's watermark at the latest event its users have (a worker that takes the
        partition over knows the partition came at least that far)."""
        self._timers.pop(partition, None)
        self.timers(partition)
        latest = max((u.last_event_ms or 0 for u in self.store.users_of(partition)), default=0)
        if latest:
            self.watermark(partition).observe("", latest)

    def revoke(self, partition: int) -> None:
        """The partition is being revoked: its watermark starts again from its users' state."""
        self.watermarks.pop(partition, None)

    def forget(self, partition: int) -> None:
        """The partition moved to another worker: drop its watermark and timers."""
        self.watermarks.pop(partition, None)
        self._timers.pop(partition, None)

    def latest(self) -> int | None:
        """The latest watermark of any partition (epoch ms), for the metric."""
        values = [v for w in self.watermarks.values() if (v := w.value()) is not None]
        return max(values) if values else None
