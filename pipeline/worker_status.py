"""Whether a worker's checkpoints complete, what it reports, and what the API decides from it.

Each engine of a worker (scoring, rooms) keeps a `CheckpointWatch`: when its last checkpoint
completed, and since when it has had events it read but not yet made durable. An engine that
has had such events for `CHECKPOINT_STALL_SECONDS` without a completed checkpoint is stalled
(its offsets are not committed: ClickHouse refusing every insert, a checkpoint that never
returns); one with nothing new to make durable is not, however long ago its last checkpoint.

Every few seconds the worker reports to the compacted topic `<APP_ID>-worker-status`, keyed
by its id: the partitions it owns, when each engine last completed a checkpoint, whether it
is stalled and why (`WorkerReport`), and a last report that owns nothing when it stops
cleanly. The API reads that topic and `pipeline.readiness` decides from the reports.

Nothing here does I/O but logging.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

log = logging.getLogger(__name__)

# A failure's text as reported and logged is cut to this many characters.
REASON_CHARS = 500


def report_interval(stall_seconds: float) -> float:
    """How often a worker reports: every few seconds, and several times within the stall
    time, so a worker that reports is never taken for a silent one."""
    return min(5.0, stall_seconds / 4)


class CheckpointWatch:
    """One engine's checkpoints, on the monotonic clock: `received` when records come,
    `completed` when a checkpoint made everything up to its snapshot durable, `check` on a
    timer to decide (and log, once per change) whether the engine is stalled."""

    def __init__(self, engine: str, stall_seconds: float, now: float) -> None:
        self.engine = engine
        self.stall_seconds = stall_seconds
        self.last_completed = now  # the start counts as a checkpoint: nothing is owed yet
        self.last_completed_wall: float | None = None  # epoch seconds; None: none yet
        self.last_received: float | None = None
        # Since when records read have waited for a checkpoint that made them durable, with
        # no checkpoint completed since (None: nothing waits).
        self.waiting_since: float | None = None
        self.stalled = False
        self.reason: str | None = None  # why, while stalled
        self._stalled_from = 0.0

    def received(self, now: float) -> None:
        """Records were read: they are owed to a checkpoint."""
        self.last_received = now
        if self.waiting_since is None:
            self.waiting_since = now

    def completed(self, began: float, now: float, wall: float) -> None:
        """A checkpoint whose snapshot was taken at `began` made everything read before it
        durable; records read since wait for the next one, counted from now."""
        self.last_completed = now
        self.last_completed_wall = wall
        if self.last_received is not None and self.last_received > began:
            self.waiting_since = now
        else:
            self.waiting_since = None

    def age(self, now: float) -> float:
        """Seconds since the last completed checkpoint (or since the start)."""
        return max(0.0, now - self.last_completed)

    def waiting_for(self, now: float) -> float:
        """Seconds records have waited without a completed checkpoint (0: none wait)."""
        if self.waiting_since is None:
            return 0.0
        return max(0.0, now - self.waiting_since)

    def check(self, now: float, failure: str | None) -> bool:
        """Whether the engine is stalled now; logs once when it becomes stalled (at ERROR,
        with `failure`, the last checkpoint failure's text, if any) and once when it
        recovers (at WARNING)."""
        stalled = self.waiting_for(now) >= self.stall_seconds
        if stalled:
            why = _cut(failure) if failure else "none recorded: a checkpoint has not returned"
            self.reason = (
                f"checkpoints of the {self.engine} engine have not completed for "
                f"{self.age(now):.0f} s (last failure: {why})"
            )
            if not self.stalled:
                self._stalled_from = self.last_completed
                log.error(
                    "%s; offsets are not committed and /readyz answers not ready", self.reason
                )
        elif self.stalled:
            log.warning(
                "checkpoints of the %s engine complete again, after %.0f s without one",
                self.engine,
                max(0.0, self.last_completed - self._stalled_from),
            )
            self.reason = None
        self.stalled = stalled
        return stalled


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


@dataclass(frozen=True)
class WorkerReport:
    """One worker's report: `partitions` and `last_checkpoint_at` (epoch seconds, None before
    the first) per engine, whether it is stalled and why, when it reported (epoch seconds),
    and whether it stopped (then it owns nothing). Per engine also: whether it is restoring
    partitions' state, the partitions not yet read up to the mark they had when assigned
    (`catching_up`), records waiting (`lag`) and how far behind reading is (`lag_seconds`)."""

    worker: str
    reported_at: float
    partitions: dict[str, list[int]] = field(default_factory=dict)
    last_checkpoint_at: dict[str, float | None] = field(default_factory=dict)
    stalled: bool = False
    reason: str | None = None
    stopped: bool = False
    restoring: list[str] = field(default_factory=list)
    catching_up: dict[str, list[int]] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    lag_seconds: dict[str, float] = field(default_factory=dict)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "worker": self.worker,
                "partitions": self.partitions,
                "last_checkpoint_at": self.last_checkpoint_at,
                "stalled": self.stalled,
                "reason": self.reason,
                "reported_at": self.reported_at,
                "stopped": self.stopped,
                "restoring": self.restoring,
                "catching_up": self.catching_up,
                "lag": self.lag,
                "lag_seconds": self.lag_seconds,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> WorkerReport | None:
        """The report in `raw`, or None when it is not one (logged). Fields a report of an
        older worker lacks take their defaults."""
        try:
            body: Any = orjson.loads(raw)
            reported_at = float(body["reported_at"])
            if not math.isfinite(reported_at):
                raise ValueError("reported_at is not finite")
            return cls(
                worker=str(body["worker"]),
                reported_at=reported_at,
                partitions=_partitions(body.get("partitions")),
                last_checkpoint_at={
                    str(engine): None if at is None else float(at)
                    for engine, at in dict(body.get("last_checkpoint_at") or {}).items()
                },
                stalled=bool(body.get("stalled", False)),
                reason=None if body.get("reason") is None else str(body["reason"]),
                stopped=bool(body.get("stopped", False)),
                restoring=sorted(str(engine) for engine in body.get("restoring") or []),
                catching_up=_partitions(body.get("catching_up")),
                lag={str(k): int(v) for k, v in dict(body.get("lag") or {}).items()},
                lag_seconds={
                    str(k): float(v) for k, v in dict(body.get("lag_seconds") or {}).items()
                },
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("ignored a worker status that is not one (%s)", exc)
            return None


def _partitions(value: Any) -> dict[str, list[int]]:
    return {
        str(engine): sorted(int(p) for p in parts) for engine, parts in dict(value or {}).items()
    }
