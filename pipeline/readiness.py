"""Whether the workers let the API answer ready: the verdict `/readyz` gives from the workers'
reports (`pipeline.worker_status.WorkerReport`) and the time. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.worker_status import WorkerReport


@dataclass(frozen=True)
class Readiness:
    """The verdict on the workers: `reasons` says why not ready (empty when ready);
    `workers` counts the running workers whose report is current, `held` the workers held
    against readiness (stalled, silent while the latest owner of a partition, restoring,
    catching up, or too far behind), `stalled` those of them stalled or silent."""

    ready: bool
    reasons: list[str]
    workers: int
    held: int
    stalled: int


def readiness(
    reports: Iterable[WorkerReport],
    now: float,
    stall_seconds: float,
    max_lag_seconds: float = float("inf"),
    partition_count: int | None = None,
) -> Readiness:
    """Ready when at least one worker reports (and has not stopped), and every worker that is
    the latest to report owning a partition reported within `stall_seconds`, is not stalled,
    has restored its partitions' state, has read them up to the mark they had when assigned,
    and is at most `max_lag_seconds` behind (READY_MAX_LAG_SECONDS); with `partition_count` (the
    input topics' partitions), every scoring partition has a current owner. A worker that crashed is
    ignored once the workers that took its partitions report them; until then its silence
    holds readiness back, since nobody processes them."""
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
    stalled = 0
    for worker, (report, owned) in sorted(owners.items()):
        age = now - report.reported_at
        if age > stall_seconds or report.stalled:
            stalled += 1
        if age > stall_seconds:
            reasons.append(
                f"worker {worker} has not reported for {age:.0f} s and is the latest owner of "
                f"{_describe(owned)}"
            )
        elif report.stalled:
            reasons.append(f"worker {worker} is stalled: {report.reason or 'no reason given'}")
        elif why := behind(report, max_lag_seconds):
            reasons.append(f"worker {worker} {why}")
    held = len(reasons)
    if partition_count is not None and reports:
        owned_now = {p for engine, p in latest if engine == "scoring"}
        unowned = sorted(set(range(partition_count)) - owned_now)
        if unowned:
            reasons.append(
                f"no worker owns scoring partitions {', '.join(map(str, unowned))} yet "
                "(a worker joining its group, or none running)"
            )
    running = [r for r in reports if not r.stopped and now - r.reported_at <= stall_seconds]
    if not running:
        if not reports:
            reasons.append("no worker has reported yet")
        else:
            last = max(reports, key=lambda r: r.reported_at)
            if last.stopped:
                reasons.append(
                    f"no worker is running: the last ({last.worker}) stopped "
                    f"{now - last.reported_at:.0f} s ago"
                )
            else:
                reasons.append(
                    f"no worker has reported for {stall_seconds:g} s (CHECKPOINT_STALL_SECONDS): "
                    f"the last report, from {last.worker}, is {now - last.reported_at:.0f} s old"
                )
    return Readiness(not reasons, reasons, len(running), held, stalled)


def behind(report: WorkerReport, max_lag_seconds: float) -> str | None:
    """Why the worker's scores are not current yet (None when they are): restoring state,
    catching up since assignment, or more than `max_lag_seconds` behind its input."""
    if report.restoring:
        return f"is restoring the state of its {', '.join(report.restoring)} partitions"
    waiting = {engine: parts for engine, parts in report.catching_up.items() if parts}
    if waiting:
        records = sum(report.lag.get(engine, 0) for engine in waiting)
        return f"is catching up on {_describe(waiting)} ({records:,} records to read)"
    for engine, seconds in sorted(report.lag_seconds.items()):
        if seconds > max_lag_seconds:
            return (
                f"is {seconds:.0f} s behind its {engine} input ({report.lag.get(engine, 0):,} "
                f"records waiting; READY_MAX_LAG_SECONDS is {max_lag_seconds:g})"
            )
    return None


def _describe(owned: Mapping[str, list[int]]) -> str:
    return "; ".join(
        f"{engine} partitions {', '.join(map(str, partitions))}"
        for engine, partitions in sorted(owned.items())
    )
