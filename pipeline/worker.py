"""The Faust worker process: scoring agent, ClickHouse sink service and metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import faust
from mode import Service
from prometheus_client import start_http_server

from agents import models, scoring
from agents.models import ModelsService
from pipeline import metrics
from pipeline.app import create_app
from pipeline.settings import Settings
from sinks.base import BatchingSink
from sinks.exceptions import SinkError
from sinks.factory import open_client

log = logging.getLogger(__name__)


class SinkService(Service):
    """Flushes the batching sink on a timer and once more when the worker stops."""

    def __init__(self, sink: BatchingSink, interval: float, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sink = sink
        self.interval = interval
        # One thread: chDB and clickhouse-driver calls block, and must not overlap.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink")
        self._closed = False

    async def flush(self) -> None:
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        try:
            written = await loop.run_in_executor(self._executor, self.sink.flush)
        except SinkError as exc:
            metrics.SINK_FAILURES.inc()
            log.error("%s", exc)
        else:
            for table, count in written.items():
                metrics.SINK_ROWS.labels(table).inc(count)
        metrics.SINK_PENDING.set(self.sink.pending)

    @Service.task
    async def _flush_loop(self) -> None:
        while not self.should_stop:
            await self.sleep(self.interval)
            await self.flush()

    async def on_stop(self) -> None:
        await self.flush()
        self._closed = True
        self._executor.shutdown(wait=True)
        self.sink.client.close()


class FlushBeforeCommit(faust.Sensor):
    """Writes the sink's rows before the consumer commits offsets, so rows of committed
    messages are never only in memory when the worker dies."""

    def __init__(self, sink: BatchingSink, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.sink = sink

    def on_commit_initiated(self, consumer: object) -> None:
        try:
            for table, count in self.sink.flush().items():
                metrics.SINK_ROWS.labels(table).inc(count)
        except SinkError as exc:
            metrics.SINK_FAILURES.inc()
            log.error("flush before commit: %s", exc)
        metrics.SINK_PENDING.set(self.sink.pending)


class MetricsService(Service):
    """Serves the worker's /metrics on loopback."""

    def __init__(self, host: str, port: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.port = port

    async def on_start(self) -> None:
        start_http_server(self.port, addr=self.host)


def build_worker(settings: Settings, loglevel: str = "warning") -> faust.Worker:
    wiring = create_app(settings)
    client = open_client(settings)
    client.ensure_schema()
    sink = BatchingSink(client)
    scorer = scoring.register(wiring, settings, sink)
    models_service = ModelsService(
        wiring,
        scorer.enricher,
        settings.model_refit_seconds,
        settings.data_dir / "worker" / "models.pkl",
    )
    models.register(wiring, models_service)
    wiring.app.sensors.add(FlushBeforeCommit(sink))
    inputs = set(settings.input_topics)

    @wiring.app.on_partitions_assigned.connect
    async def _assigned(_app: faust.App, assigned: set[object], **_: object) -> None:
        count = sum(1 for tp in assigned if getattr(tp, "topic", None) in inputs)
        metrics.ASSIGNED_PARTITIONS.set(count)

    sink_service = SinkService(sink, settings.sink_flush_seconds)
    metrics_service = MetricsService(settings.api_host, settings.worker_metrics_port)
    return faust.Worker(
        wiring.app,
        metrics_service,
        sink_service,
        models_service,
        loglevel=loglevel,
        quiet=True,
        redirect_stdouts=False,
    )


def run_worker(settings: Settings, loglevel: str = "warning") -> None:
    """Run until SIGTERM or SIGINT; the sink flushes what it holds before exit."""
    worker = build_worker(settings, loglevel)
    worker.execute_from_commandline()
