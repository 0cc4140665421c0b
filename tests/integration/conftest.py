"""Fixtures that run the real parts; nothing here is mocked and nothing skips."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pipeline.settings import Settings
from pipeline.topics import ensure_topics
from tests.integration.parts import (
    Proc,
    free_port,
    lifecycle,
    metric_at,
    start_broker,
    start_clickhouse_server,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, bootstrap = start_broker(tmp_path_factory.mktemp("broker"))
    yield bootstrap
    proc.stop()


@pytest.fixture(scope="session")
def clickhouse_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    proc, port = start_clickhouse_server(tmp_path_factory.mktemp("clickhouse"))
    yield port
    proc.stop()


@dataclass
class Running:
    """A worker and an API on their own topics, with the settings they run with."""

    settings: Settings
    env: dict[str, str]
    worker: Proc
    api: Proc
    tmp: Path
    exit_codes: tuple[int, int] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    def get(self, path: str, key: str | None = "test-key") -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        return httpx.get(self.base_url + path, headers=headers, timeout=5)


def pipeline_env(bootstrap: str, clickhouse_url: str, tmp: Path, prefix: str) -> dict[str, str]:
    """Environment of a worker and API on topics of their own (`prefix`), on free ports."""
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP": bootstrap,
            "CLICKHOUSE_URL": clickhouse_url,
            "DATA_DIR": str(tmp / "data"),
            "API_PORT": str(free_port()),
            "WORKER_METRICS_PORT": str(free_port()),
            "CLICKHOUSE_HTTP_PORT": str(free_port()),
            "API_KEYS": '["test-key"]',
            "ADMIN_API_KEYS": '["test-admin"]',
            "PRODUCER_API_KEYS": '["test-producer"]',
            "APP_ID": f"{prefix}-app",
            "TOPIC_LIVE": f"{prefix}-live",
            "TOPIC_CHAT": f"{prefix}-chat",
            "TOPIC_ORDER": f"{prefix}-order",
            "TOPIC_TOUCH": f"{prefix}-touch",
            "TOPIC_SCORES": f"{prefix}-scores",
            "TOPIC_TRIGGERS": f"{prefix}-triggers",
            "TOPIC_DEAD_LETTERS": f"{prefix}-dead",
            "TOPIC_STAGE_CHANGES": f"{prefix}-stage-changes",
            "TOPIC_MODELS": f"{prefix}-models",
            "TOPIC_POPULATION": f"{prefix}-population",
            "TOPIC_COMMANDS": f"{prefix}-commands",
            "SINK_FLUSH_SECONDS": "0.2",
        }
    )
    env.pop("EMBEDDED", None)
    return env


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a child started with `env` reads, parsed the same way."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def start_pipeline(env: dict[str, str], tmp: Path) -> Running:
    settings = settings_of(env)
    asyncio.run(ensure_topics(settings))
    worker = Proc("worker", lifecycle("worker"), env, tmp / "worker.log")
    api = Proc("api", lifecycle("api"), env, tmp / "api.log")
    running = Running(settings, env, worker, api, tmp)

    def api_ready() -> bool:
        assert worker.alive(), f"worker exited:\n{worker.tail()}"
        assert api.alive(), f"api exited:\n{api.tail()}"
        return running.get("/readyz", key=None).status_code == 200

    wait_until(api_ready, 60, "the API to be ready", step=0.1)
    return running


def worker_metric(running: Running, name: str) -> float:
    """Sum of a metric's samples on the worker's /metrics."""
    return metric_at(running.settings.worker_metrics_port, name)


def books(running: Running) -> tuple[float, float]:
    """The worker's events in, and events scored + duplicates + dead letters + erased +
    held refunds (equal once every event read is accounted for)."""
    accounted = sum(
        worker_metric(running, name)
        for name in (
            "lifecycle_events_scored_total",
            "lifecycle_duplicates_total",
            "lifecycle_dead_letters_total",
            "lifecycle_erased_events_total",
            "lifecycle_held_refunds",
        )
    )
    return worker_metric(running, "lifecycle_events_in_total"), accounted


def wait_worker_assigned(running: Running) -> None:
    def assigned() -> bool:
        assert running.worker.alive(), f"worker exited:\n{running.worker.tail()}"
        return worker_metric(running, "lifecycle_worker_assigned_partitions") > 0

    wait_until(assigned, 60, "the worker to join its group", step=0.1)


@pytest.fixture(params=["chdb", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """CLICKHOUSE_URL of each real store: embedded chDB and a server over the native protocol."""
    if request.param == "chdb":
        return f"chdb:///{tmp_path / 'chdb'}"
    port = request.getfixturevalue("clickhouse_port")
    return f"clickhouse://127.0.0.1:{port}/t_{tmp_path.name.replace('-', '_')[-40:]}"


@contextmanager
def chdb_pipeline(broker: str, tmp: Path, prefix: str, **env: str) -> Iterator[Running]:
    """A worker and an API on chDB with topics of their own, joined to their group; stopped
    with SIGTERM afterwards. Their exit codes are `exit_codes` (api, worker) once stopped."""
    environment = pipeline_env(broker, f"chdb:///{tmp / 'chdb'}", tmp, prefix)
    environment.update(env)
    running = start_pipeline(environment, tmp)
    try:
        wait_worker_assigned(running)
        yield running
    finally:
        running.exit_codes = (running.api.stop(), running.worker.stop())
