"""The worker's status: whether its engines' checkpoints complete (metrics, one log line per
change) and its reports to `<APP_ID>-worker-status`, which the API's /readyz reads.

The checks run on a timer of their own, outside the engines' loops, so an engine stuck in a
checkpoint that never returns is seen as well as one whose checkpoints fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from mode import Service

from agents.engine import BatchEngine
from agents.lag import Lag
from pipeline import metrics
from pipeline.readiness import behind
from pipeline.settings import Settings
from pipeline.worker_status import WorkerReport, report_interval

log = logging.getLogger(__name__)


def worker_id() -> str:
    """This worker process: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class StatusService(Service):
    """Checks the engines about every second; reports every few seconds, at once when a
    partition moves or a stall begins or ends, and a last time (owning nothing) on stop."""

    def __init__(
        self,
        settings: Settings,
        engines: Sequence[BatchEngine],
        failure: Callable[[], str | None],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.engines = list(engines)
        self.failure = failure  # the last checkpoint failure's text, while failing
        self.worker = worker_id()
        self.every = report_interval(settings.checkpoint_stall_seconds)
        self.tick = min(1.0, self.every)
        self.producer: AIOKafkaProducer | None = None
        self._last: tuple[Any, ...] | None = None  # what the last report said
        self._reported_at = 0.0  # monotonic
        self._unsent = False  # the last report could not be sent (logged once)
        self._task: asyncio.Task[None] | None = None
        self.last_report: WorkerReport | None = None  # the last check's
        self.last_tick = time.monotonic()  # when the loop last checked (the /healthz beat)

    async def on_start(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, linger_ms=0
        )
        await self.producer.start()
        self._task = asyncio.create_task(self._status_loop(), name="worker-status")

    def check(self) -> WorkerReport:
        """Each engine's checkpoint age and stall (metrics; a log line on each change), its
        lag (metrics), and the report they make now."""
        now, wall, failure = time.monotonic(), time.time(), self.failure()
        reasons: list[str] = []
        lags: dict[str, Lag] = {}
        for engine in self.engines:
            watch = engine.checkpoint_watch
            stalled = watch.check(now, failure)
            metrics.CHECKPOINT_AGE.labels(watch.engine).set(round(watch.age(now), 3))
            metrics.CHECKPOINT_STALLED.labels(watch.engine).set(1 if stalled else 0)
            if stalled and watch.reason:
                reasons.append(watch.reason)
            if engine.consumer is not None:
                lags[watch.engine] = engine.lag.measure(engine.consumer, wall)
        return WorkerReport(
            worker=self.worker,
            reported_at=wall,
            partitions={e.checkpoint_watch.engine: e.owned_partitions() for e in self.engines},
            last_checkpoint_at={
                e.checkpoint_watch.engine: e.checkpoint_watch.last_completed_wall
                for e in self.engines
            },
            stalled=bool(reasons),
            reason="; ".join(reasons) or None,
            restoring=[e.checkpoint_watch.engine for e in self.engines if e.restoring],
            catching_up={
                engine: sorted(set(lag.catching_up) | set(lag.unknown))
                for engine, lag in lags.items()
                if lag.catching_up or lag.unknown
            },
            lag={engine: lag.records for engine, lag in lags.items()},
            lag_seconds={engine: lag.seconds for engine, lag in lags.items()},
        )

    def verdict(self, report: WorkerReport) -> str | None:
        """Why this worker is not ready (None when it is): not in its consumer groups yet,
        stalled, restoring, catching up or too far behind; the worker's own /readyz."""
        joining = [e.checkpoint_watch.engine for e in self.engines if not e.joined]
        if joining:
            engines = " and ".join(joining) + (" engines" if len(joining) > 1 else " engine")
            return f"has not joined the consumer group of its {engines} yet"
        if report.stalled:
            return f"stalled: {report.reason}"
        return behind(report, self.settings.ready_max_lag_seconds)

    async def _status_loop(self) -> None:
        while not self.should_stop:
            try:
                report = self.check()
                self.last_tick = time.monotonic()
                self.last_report = report
                # At once when what /readyz decides from changes; else every few seconds.
                said = (report.partitions, report.stalled, self.verdict(report) is None)
                due = time.monotonic() - self._reported_at >= self.every
                if (said != self._last or due) and await self._send(report):
                    self._last = said
                    self._reported_at = time.monotonic()
            except Exception:  # a fault of ours: say so, and check again next time
                log.exception("the worker status check failed")
            await self.sleep(self.tick)

    async def _send(self, report: WorkerReport) -> bool:
        """Send a report, waiting at most the report interval: a broker that does not answer
        must not hold up the checks for long (the API counts a worker that does not report as
        not ready)."""
        if self.producer is None:
            return False
        timeout = max(self.every, 1.0)
        try:
            await asyncio.wait_for(
                self.producer.send_and_wait(
                    self.settings.worker_status_topic,
                    key=self.worker.encode(),
                    value=report.encode(),
                ),
                timeout=timeout,
            )
        except Exception as exc:  # the broker away: the checks go on, the API notices
            if not self._unsent:
                why = str(exc) or f"no answer within {timeout:g} s"
                log.warning("could not send the worker status (%s: %s)", type(exc).__name__, why)
            self._unsent = True
            return False
        if self._unsent:
            log.info("the worker status is sent again")
        self._unsent = False
        return True

    async def on_stop(self) -> None:
        if self._task is not None:  # no report of the loop may follow the last one
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.producer is None:
            return
        try:
            stopped = WorkerReport(
                worker=self.worker,
                reported_at=time.time(),
                partitions={},
                last_checkpoint_at={
                    e.checkpoint_watch.engine: e.checkpoint_watch.last_completed_wall
                    for e in self.engines
                },
                stopped=True,
            )
            await self._send(stopped)
        finally:
            await self.producer.stop()
