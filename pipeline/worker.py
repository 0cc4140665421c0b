"""The Faust worker process: scoring engine, models, ClickHouse sink service and metrics."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import faust
from mode import Service

from agents.clickhouse_http import ClickHouseHttp
from agents.models import ModelsService
from agents.rooms import RoomEngine
from agents.scoring import ScoringEngine
from agents.status import StatusService
from agents.worker_http import WorkerHttp
from pipeline import metrics
from pipeline.app import create_app
from pipeline.domain.triggers import load_rules
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.store import UserStore
from schemas.validation import REASONS
from sinks.base import BatchingSink
from sinks.chdb import ChdbClient
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
        self._failures = 0  # consecutive failed flushes
        self._next_failure_log = 0.0
        self.failing = False  # the last flush failed
        self.last_error: str | None = None  # the last failure's text

    @property
    def failure(self) -> str | None:
        """Why the last flush failed, while the store refuses writes (else None)."""
        return self.last_error if self.failing else None

    async def flush(self) -> bool:
        """Write what the sink holds; false when the store is out (the rows stay). Rows the
        store refuses wait in `sink.take_refused()` for the engines to dead-letter."""
        if self._closed:
            return False
        loop = asyncio.get_running_loop()
        if self.failing:
            metrics.SINK_RETRIES.inc()
        try:
            written = await loop.run_in_executor(self._executor, self.sink.flush)
        except SinkError as exc:
            metrics.SINK_FAILURES.inc()
            self._failures += 1
            # One line when the store starts failing, then one a minute while it goes on (a
            # flush runs twice a second): the cause stays readable in the log.
            if not self.failing or time.monotonic() >= self._next_failure_log:
                repeated = f" ({self._failures} failed flushes so far)" if self.failing else ""
                log.error("ClickHouse flush failed%s: %s", repeated, exc)
                self._next_failure_log = time.monotonic() + 60.0
            self.failing, self.last_error = True, str(exc)
            return False
        else:
            if self.failing:
                log.warning("ClickHouse flushes succeed again after %d failures", self._failures)
            self.failing, self._failures = False, 0
            for table, count in written.items():
                metrics.SINK_ROWS.labels(table).inc(count)
                if count:
                    metrics.SINK_BATCHES.labels(table).inc()
            return True
        finally:
            metrics.SINK_PENDING.set(self.sink.pending)

    @Service.task
    async def _flush_loop(self) -> None:
        while not self.should_stop:
            await self.sleep(self.interval)
            await self.flush()

    async def read(self, sql: str, fmt: str) -> bytes:
        """A read on the store's thread, between flushes (chDB: the HTTP interface)."""
        client = self.sink.client
        if self._closed or not isinstance(client, ChdbClient):
            raise SinkError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, client.query_raw, sql, fmt)

    async def on_stop(self) -> None:
        await self.flush()
        self._closed = True
        left = self.sink.take_refused()
        if left:  # the engines dead-letter them at each checkpoint: none should be left
            log.error(
                "%d rows ClickHouse refused after the last checkpoint are not dead-lettered "
                "(their input offsets are not committed either)",
                len(left),
            )
        self._executor.shutdown(wait=True)
        self.sink.client.close()


def build_worker(settings: Settings) -> faust.Worker:
    """The worker and its services; logging is the process's own (`pipeline.logs`), set up
    before this: mode's set-up (coloured console lines) and Faust's spinner are turned off."""
    rules = load_rules(settings.triggers_file)  # an invalid rules file stops the start here
    metrics.initialise_worker(rules.names, settings.input_topics, REASONS)
    wiring = create_app(settings)
    client = open_client(settings)
    client.ensure_schema(settings.raw_event_retention_days)
    sink = BatchingSink(client, settings.sink_max_buffered_rows)
    sink_service = SinkService(sink, settings.sink_flush_seconds)
    scorer = Scorer(
        settings,
        UserStore(),
        rules=rules,
    )
    scorer.enricher.local_churn = False  # churn probabilities from the leader's model only
    engine = ScoringEngine(settings, scorer, sink, sink_service.flush)
    rooms = RoomEngine(settings, rules.room_rules, sink, sink_service.flush)
    models_service = ModelsService(
        wiring,
        scorer,
        engine.owned_partitions,
        settings.model_refit_seconds,
        settings.data_dir / "worker" / "models.pkl",
    )
    status = StatusService(settings, (engine, rooms), lambda: sink_service.failure)
    services: list[Service] = [WorkerHttp(settings.api_host, settings.worker_metrics_port, status)]
    if isinstance(client, ChdbClient):  # the store no other process can open
        port = settings.clickhouse_http_port
        services.append(ClickHouseHttp(settings.api_host, port, sink_service.read))
    # Stopped in reverse order: the engine's last checkpoint still has the sink.
    worker = faust.Worker(
        wiring.app,
        *services,
        status,  # stopped after the engines: its last report follows their last checkpoints
        sink_service,
        models_service,
        rooms,
        engine,
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    worker.spinner = None  # it writes terminal control characters to standard output
    return worker


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT; the sink flushes what it holds before exit."""
    # Scoring allocates many short-lived objects per event next to a large, long-lived set
    # of users: collect the young generation less often (measured: about a fifth faster).
    gc.set_threshold(50_000, 50, 100)
    build_worker(settings).execute_from_commandline()
