"""The worker's own probes: /healthz follows the event loop's beat, /readyz the status check's
verdict (joined, not stalled, caught up); /metrics the worker's registry."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from agents.status import StatusService
from agents.worker_http import WorkerHttp
from pipeline.settings import Settings
from pipeline.worker_status import CheckpointWatch, WorkerReport


class Engine:
    def __init__(self, joined: bool) -> None:
        self.checkpoint_watch = CheckpointWatch("scoring", 60.0, 0.0)
        self.joined = joined
        self.restoring = False
        self.consumer = None

    def owned_partitions(self) -> list[int]:
        return [0, 1]


def call(http: WorkerHttp, path: str) -> tuple[str, Any]:
    said: list[str] = []
    body = b"".join(http.app({"PATH_INFO": path, "REQUEST_METHOD": "GET"},
                             lambda status, _headers: said.append(status)))  # fmt: skip
    return said[0], body


def service(engine: Engine) -> tuple[StatusService, WorkerHttp]:
    status = StatusService(Settings(checkpoint_stall_seconds=60.0), [engine], lambda: None)  # type: ignore[list-item]
    return status, WorkerHttp("127.0.0.1", 0, status)


def test_healthz_follows_the_event_loops_beat(monkeypatch: pytest.MonkeyPatch) -> None:
    status, http = service(Engine(joined=True))
    assert call(http, "/healthz") == ("200 OK", b'{"status":"ok"}')
    status.last_tick = time.monotonic() - 61  # the loop has not checked for a minute
    code, body = call(http, "/healthz")
    assert code == "503 Service Unavailable"
    assert orjson.loads(body)["reasons"][0].startswith("the event loop has not run its status")


def test_readyz_waits_for_the_first_check_and_the_consumer_group() -> None:
    engine = Engine(joined=False)
    status, http = service(engine)
    code, body = call(http, "/readyz")
    assert (code, orjson.loads(body)["reasons"]) == (
        "503 Service Unavailable",
        ["the worker is starting"],
    )
    status.last_report = status.check()
    code, body = call(http, "/readyz")
    assert orjson.loads(body)["reasons"] == [
        "has not joined the consumer group of its scoring engine yet"
    ]
    engine.joined = True
    status.last_report = status.check()
    code, body = call(http, "/readyz")
    assert code == "200 OK"
    assert orjson.loads(body)["partitions"] == {"scoring": [0, 1]}
    stalled = WorkerReport(worker="w", reported_at=0.0, stalled=True, reason="ClickHouse down")
    status.last_report = stalled
    assert orjson.loads(call(http, "/readyz")[1])["reasons"] == ["stalled: ClickHouse down"]


def test_metrics_are_the_workers_registry() -> None:
    _, http = service(Engine(joined=True))
    code, body = call(http, "/metrics")
    assert code.startswith("200")
    assert b"lifecycle_checkpoint_stalled" in body
    assert b"lifecycle_api_" not in body
