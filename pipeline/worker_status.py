"""Whether a worker's checkpoints complete, what it reports, and what the API decides from it.

Each engine of a worker (scoring, rooms) keeps a `CheckpointWatch`: when its last checkpoint
completed, and since when it has had events it read but not yet made durable. An engine that
has had such events for `CHECKPOINT_STALL_SECONDS` without a completed checkpoint is stalled
(its offsets are not committed: ClickHouse refusing every insert, a checkpoint that never
returns); one with nothing new to make durable is not, however long ago its last checkpoint.

Every few seconds the worker reports to the compacted topic `<APP_ID>-worker-status`, keyed
by its id: the partitions it owns, when each engine last completed a checkpoint, whether it
is stalled and why (`WorkerReport`), and a last report that owns nothing when it stops
cleanly. The API reads that topic and `readiness` decides from the reports and the time.

Nothing here does I/O but logging.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
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
    and whether it stopped (then it owns nothing)."""

    worker: str
    reported_at: float
    partitions: dict[str, list[int]] = field(default_factory=dict)
    last_checkpoint_at: dict[str, float | None] = field(default_factory=dict)
    stalled: bool = False
    reason: str | None = None
    stopped: bool = False

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
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> WorkerReport | None:
        """The report in `raw`, or None when it is not one (logged)."""
        try:
            body: Any = orjson.loads(raw)
            reported_at = float(body["reported_at"])
            if not math.isfinite(reported_at):
                raise ValueError("reported_at is not finite")
            return cls(
                worker=str(body["worker"]),
                reported_at=reported_at,
                partitions={
                    str(engine): sorted(int(p) for p in parts)
                    for engine, parts in dict(body.get("partitions") or {}).items()
                },
                last_checkpoint_at={
                    str(engine): None if at is None else float(at)
                    for engine, at in dict(body.get("last_checkpoint_at") or {}).items()
                },
                stalled=bool(body.get("stalled", False)),
                reason=None if body.get("reason") is None else str(body["reason"]),
                stopped=bool(body.get("stopped", False)),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("ignored a worker status that is not one (%s): %r", exc, raw[:200])
            return None


@dataclass(frozen=True)
class Readiness:
    """The API's verdict on the workers: `reasons` says why not ready (empty when ready);
    `workers` counts the running workers whose report is current, `stalled` the workers held
    against readiness (stalled, or silent while the latest owner of a partition)."""

    ready: bool
    reasons: list[str]
    workers: int
    stalled: int


def readiness(reports: Iterable[WorkerReport], now: float, stall_seconds: float) -> Readiness:
    """Ready when at least one worker reports (and has not stopped), and every worker that is
    the latest to report owning a partition reported within `stall_seconds` and is not
    stalled. A worker that crashed is ignored once the workers that took its partitions
    report them; until then its silence holds readiness back, since nobody processes them."""
    reports = list(reports)
    latest: dict[tuple[str, int], WorkerReport] = {}
    for report in reports:
        for engine, partitions in report.partitions.items():
            for partition in partitions:
                known = latest.get((engine, partition))
                if known is None or (report.reported_at, report.worker) > (
                    known.reported_at,
                    known.worker,
                ):
                    latest[(engine, partition)] = report
    owners: dict[str, tuple[WorkerReport, dict[str, list[int]]]] = {}
    for (engine, partition), report in sorted(latest.items()):
        _, owned = owners.setdefault(report.worker, (report, {}))
        owned.setdefault(engine, []).append(partition)
    reasons: list[str] = []
    for worker, (report, owned) in sorted(owners.items()):
        age = now - report.reported_at
        if age > stall_seconds:
            reasons.append(
                f"worker {worker} has not reported for {age:.0f} s and is the latest owner of "
                f"{_describe(owned)}"
            )
        elif report.stalled:
            reasons.append(f"worker {worker} is stalled: {report.reason or 'no reason given'}")
    held = len(reasons)
    running = [r for r in reports if not r.stopped and now - r.reported_at <= stall_seconds]
    if not running:
        if not reports:
            reasons.append("no worker has reported yet")
        else:
            last = max(reports, key=lambda r: r.reported_at)
            what = "stopped" if last.stopped else "reported"
            reasons.append(
                f"no worker is running: the last report ({last.worker}, {what}) is "
                f"{now - last.reported_at:.0f} s old"
            )
    return Readiness(not reasons, reasons, len(running), held)


def _describe(owned: Mapping[str, list[int]]) -> str:
    return "; ".join(
        f"{engine} partitions {', '.join(map(str, partitions))}"
        for engine, partitions in sorted(owned.items())
    )
