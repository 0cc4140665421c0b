"""Stalled checkpoints: the engine's watch (stalled once, logged once, recovered), the worker's
reports, the API's readiness decision from them, and /readyz on top of it."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agents.status import StatusService
from api.routes import health
from pipeline import metrics
from pipeline.readiness import readiness
from pipeline.settings import Settings
from pipeline.worker_status import CheckpointWatch, WorkerReport, report_interval

STALL = 60.0
T0 = 1_000.0  # monotonic


def stall_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "pipeline.worker_status" and r.levelno == level
    ]


# -- the engine's watch --------------------------------------------------------------------


def test_an_engine_with_nothing_to_make_durable_is_never_stalled() -> None:
    watch = CheckpointWatch("scoring", STALL, T0)
    assert not watch.check(T0 + 10 * STALL, "insert into events failed")
    assert watch.age(T0 + 10 * STALL) == 10 * STALL
    assert watch.waiting_for(T0 + 10 * STALL) == 0.0
    # Read, then made durable by a checkpoint whose snapshot came after it: nothing waits.
    watch.received(T0 + 1)
    watch.completed(began=T0 + 2, now=T0 + 3, wall=1.7e9)
    assert not watch.check(T0 + 10 * STALL, None)
    assert watch.last_completed_wall == 1.7e9


def test_stalled_once_logged_once_then_recovered_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.worker_status")
    watch = CheckpointWatch("scoring", STALL, T0)
    watch.received(T0 + 5)
    failure = "insert into events failed (12 rows kept): ClickHouse server: Connection refused"
    assert not watch.check(T0 + 5 + STALL - 0.1, failure)
    assert stall_lines(caplog, logging.ERROR) == []

    for second in range(10):  # checked every second while it lasts: one line only
        assert watch.check(T0 + 5 + STALL + second, failure)
    errors = stall_lines(caplog, logging.ERROR)
    assert len(errors) == 1
    assert errors[0] == (
        "checkpoints of the scoring engine have not completed for 65 s (last failure: "
        f"{failure}); offsets are not committed and /readyz answers not ready"
    )
    assert watch.reason is not None
    assert watch.reason.startswith("checkpoints of the scoring engine have not completed")
    assert failure in watch.reason

    # A checkpoint completes: recovered at the next check, said once at WARNING.
    watch.completed(began=T0 + 80, now=T0 + 81, wall=1.7e9)
    assert not watch.check(T0 + 82, failure)
    assert not watch.check(T0 + 83, None)
    assert stall_lines(caplog, logging.WARNING) == [
        "checkpoints of the scoring engine complete again, after 81 s without one"
    ]
    assert watch.reason is None
    assert len(stall_lines(caplog, logging.ERROR)) == 1


def test_records_read_after_the_snapshot_wait_from_the_checkpoint_that_missed_them() -> None:
    watch = CheckpointWatch("rooms", STALL, T0)
    watch.received(T0 + 1)
    watch.received(T0 + 30)  # after the snapshot of the checkpoint below
    watch.completed(began=T0 + 20, now=T0 + 40, wall=1.7e9)
    assert watch.waiting_for(T0 + 40 + STALL - 1) == STALL - 1
    assert not watch.check(T0 + 40 + STALL - 1, None)
    assert watch.check(T0 + 40 + STALL, None)
    assert watch.reason is not None
    assert "last failure: none recorded" in watch.reason


def test_a_long_failure_text_is_cut() -> None:
    watch = CheckpointWatch("scoring", 1.0, T0)
    watch.received(T0)
    assert watch.check(T0 + 2, "x" * 5000)
    assert watch.reason is not None
    assert len(watch.reason) < 700
    assert watch.reason.endswith("...)")


def test_reports_come_several_times_within_the_stall_time() -> None:
    assert report_interval(60) == 5.0
    assert report_interval(3) == 0.75


# -- the worker's report -------------------------------------------------------------------


class FakeEngine:
    def __init__(self, name: str, partitions: list[int]) -> None:
        self.checkpoint_watch = CheckpointWatch(name, 3.0, 0.0)
        self.partitions = partitions
        self.consumer = None  # not started: no lag is measured
        self.restoring = False
        self.joined = True

    def owned_partitions(self) -> list[int]:
        return self.partitions


def test_the_status_check_sets_the_metrics_and_makes_the_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scoring, rooms = FakeEngine("scoring", [0, 2]), FakeEngine("rooms", [1])
    scoring.checkpoint_watch.received(0.0)
    monkeypatch.setattr("agents.status.time.monotonic", lambda: 10.0)
    monkeypatch.setattr("agents.status.time.time", lambda: 1.7e9)
    service = StatusService(
        Settings(checkpoint_stall_seconds=3.0, catch_up_commit_interval_seconds=1.0),
        [scoring, rooms],  # type: ignore[list-item]
        lambda: "ClickHouse is down",
    )
    report = service.check()
    assert report.worker == service.worker
    assert report.partitions == {"scoring": [0, 2], "rooms": [1]}
    assert report.last_checkpoint_at == {"scoring": None, "rooms": None}
    assert report.stalled
    assert report.reason is not None
    assert "scoring engine" in report.reason
    assert "ClickHouse is down" in report.reason
    assert report.reported_at == 1.7e9
    assert metrics.CHECKPOINT_STALLED.labels("scoring")._value.get() == 1
    assert metrics.CHECKPOINT_STALLED.labels("rooms")._value.get() == 0
    assert metrics.CHECKPOINT_AGE.labels("rooms")._value.get() == 10.0
    assert WorkerReport.decode(report.encode()) == report


def test_a_report_that_is_not_one_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    assert WorkerReport.decode(b"not json") is None
    assert WorkerReport.decode(b'{"worker": "w"}') is None
    assert WorkerReport.decode(b'{"worker": "w", "reported_at": "NaN"}') is None
    assert "ignored a worker status" in caplog.text


# -- the API's decision --------------------------------------------------------------------

NOW = 1_700_000_000.0


def report(
    worker: str,
    age: float,
    scoring: list[int] | None = None,
    rooms: list[int] | None = None,
    stalled: bool = False,
    stopped: bool = False,
    restoring: list[str] | None = None,
) -> WorkerReport:
    return WorkerReport(
        worker=worker,
        reported_at=NOW - age,
        partitions={"scoring": scoring or [], "rooms": rooms or []},
        stalled=stalled,
        reason="checkpoints of the scoring engine have not completed for 62 s" if stalled else None,
        stopped=stopped,
        restoring=restoring or [],
    )


def test_ready_with_a_worker_that_reports_and_checkpoints() -> None:
    verdict = readiness([report("a", 2, [0, 1, 2, 3], [0, 1, 2, 3])], NOW, STALL)
    assert verdict.ready
    assert verdict.reasons == []
    assert (verdict.workers, verdict.held, verdict.stalled) == (1, 0, 0)


def test_not_ready_before_any_worker_reports() -> None:
    verdict = readiness([], NOW, STALL)
    assert not verdict.ready
    assert verdict.reasons == ["no worker has reported yet"]
    assert (verdict.workers, verdict.stalled) == (0, 0)


def test_a_worker_that_reports_before_it_owns_partitions_is_enough_to_start() -> None:
    assert readiness([report("a", 1)], NOW, STALL).ready


def test_not_ready_when_a_current_owner_is_stalled() -> None:
    verdict = readiness(
        [report("a", 1, [0, 1], [0, 1], stalled=True), report("b", 1, [2, 3], [2, 3])],
        NOW,
        STALL,
    )
    assert not verdict.ready
    assert verdict.reasons == [
        "worker a is stalled: checkpoints of the scoring engine have not completed for 62 s"
    ]
    assert (verdict.workers, verdict.held, verdict.stalled) == (2, 1, 1)


def test_a_stalled_worker_that_owns_nothing_is_ignored() -> None:
    verdict = readiness([report("a", 1, stalled=True), report("b", 1, [0, 1])], NOW, STALL)
    assert verdict.ready


def test_not_ready_when_the_latest_owner_of_a_partition_went_silent() -> None:
    verdict = readiness([report("a", 61, [0, 1], [0]), report("b", 1, [2, 3], [1])], NOW, STALL)
    assert not verdict.ready
    assert verdict.reasons == [
        "worker a has not reported for 61 s and is the latest owner of rooms partitions 0; "
        "scoring partitions 0, 1"
    ]
    assert (verdict.workers, verdict.held, verdict.stalled) == (1, 1, 1)


def test_a_crashed_worker_whose_partitions_were_taken_over_is_ignored() -> None:
    crashed = report("a", 300, [0, 1, 2, 3], [0, 1, 2, 3], stalled=True)
    verdict = readiness([crashed, report("b", 2, [0, 1, 2, 3], [0, 1, 2, 3])], NOW, STALL)
    assert verdict.ready
    # Until another worker reports the partitions it owned, its silence counts.
    partly = readiness([crashed, report("b", 2, [0, 1], [0, 1, 2, 3])], NOW, STALL)
    assert not partly.ready
    assert partly.reasons == [
        "worker a has not reported for 300 s and is the latest owner of scoring partitions 2, 3"
    ]


def test_a_worker_that_stopped_cleanly_owns_nothing() -> None:
    stopped = report("a", 30, stopped=True)
    assert readiness([stopped, report("b", 1, [0, 1, 2, 3])], NOW, STALL).ready
    alone = readiness([stopped], NOW, STALL)
    assert not alone.ready
    assert alone.reasons == ["no worker is running: the last (a) stopped 30 s ago"]


def test_not_ready_when_every_report_is_old() -> None:
    verdict = readiness([report("a", 600)], NOW, STALL)
    assert not verdict.ready
    assert verdict.reasons == [
        "no worker has reported for 60 s (CHECKPOINT_STALL_SECONDS): the last report, from a, "
        "is 600 s old"
    ]


# -- /readyz -------------------------------------------------------------------------------


class FakeView:
    def __init__(self, documents: dict[str, bytes], ready: bool = True) -> None:
        self.documents = documents
        self.ready = ready


def client(status: dict[str, bytes], scores_ready: bool = True) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(health.router)
    app.state.settings = Settings(checkpoint_stall_seconds=STALL)
    app.state.view = FakeView({"u1": b"{}"}, scores_ready)
    app.state.triggers_view = SimpleNamespace(ready=True)
    app.state.erasures_view = SimpleNamespace(ready=True)
    app.state.status_view = FakeView(status)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


def body_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


async def test_readyz_answers_ready_and_says_so_in_the_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("api.routes.health.time.time", lambda: NOW)
    api = client({"a": report("a", 1, [0, 1, 2, 3]).encode()})
    response = await api.get("/readyz")
    assert response.status_code == 200
    assert body_of(response) == {
        "ready": True,
        "users": 1,
        "triggers": True,
        "workers": 1,
        "stalled_workers": 0,
        "workers_not_ready": 0,
        "reasons": [],
    }
    exposition = (await api.get("/metrics")).text
    assert "lifecycle_api_ready 1.0" in exposition
    assert "lifecycle_api_stalled_workers 0.0" in exposition


async def test_readyz_answers_503_with_the_reason_of_a_stalled_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("api.routes.health.time.time", lambda: NOW)
    api = client({"a": report("a", 1, [0, 1, 2, 3], stalled=True).encode(), "x": b"garbage"})
    response = await api.get("/readyz")
    assert response.status_code == 503
    body = body_of(response)
    assert body["ready"] is False
    assert (body["stalled_workers"], body["workers_not_ready"]) == (1, 1)
    assert body["reasons"] == [
        "worker a is stalled: checkpoints of the scoring engine have not completed for 62 s"
    ]
    exposition = (await api.get("/metrics")).text
    assert "lifecycle_api_ready 0.0" in exposition
    assert "lifecycle_api_stalled_workers 1.0" in exposition
    assert "lifecycle_api_workers_not_ready 1.0" in exposition


async def test_a_worker_catching_up_holds_readiness_back_without_being_stalled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found trying the product: while the demo's worker caught up on its history, /readyz
    said `stalled_workers: 1`, which the README keeps for checkpoints that do not complete."""
    monkeypatch.setattr("api.routes.health.time.time", lambda: NOW)
    catching_up = report("a", 1, [0, 1, 2, 3], [0, 1, 2, 3])
    catching_up.catching_up["scoring"] = [2, 3]
    catching_up.lag["scoring"] = 82_022
    api = client({"a": catching_up.encode()})
    response = await api.get("/readyz")
    assert response.status_code == 503
    body = body_of(response)
    assert (body["stalled_workers"], body["workers_not_ready"]) == (0, 1)
    assert body["reasons"] == [
        "worker a is catching up on scoring partitions 2, 3 (82,022 records to read)"
    ]
    exposition = (await api.get("/metrics")).text
    assert "lifecycle_api_stalled_workers 0.0" in exposition
    assert "lifecycle_api_workers_not_ready 1.0" in exposition


async def test_a_change_of_readiness_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api.routes.health")
    monkeypatch.setattr("api.routes.health.time.time", lambda: NOW)
    status = {"a": report("a", 1, [0, 1, 2, 3]).encode()}
    api = client(status)
    for _ in range(3):
        assert (await api.get("/readyz")).status_code == 200
    status["a"] = report("a", 1, [0, 1, 2, 3], stalled=True).encode()
    for _ in range(3):
        assert (await api.get("/readyz")).status_code == 503
    status["a"] = report("a", 1, [0, 1, 2, 3]).encode()
    await api.get("/readyz")
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "api.routes.health"]
    assert lines == [
        ("WARNING", "not ready: worker a is stalled: checkpoints of the scoring engine have not "
                    "completed for 62 s"),
        ("INFO", "ready"),
    ]  # fmt: skip


async def test_readyz_still_waits_for_its_views(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("api.routes.health.time.time", lambda: NOW)
    api = client({"a": report("a", 1, [0, 1, 2, 3]).encode()}, scores_ready=False)
    response = await api.get("/readyz")
    assert response.status_code == 503
    assert body_of(response)["reasons"] == ["the scores view is still loading"]


async def test_readyz_waits_for_a_worker_that_restores_and_one_per_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("api.routes.health.time.time", lambda: NOW)
    restoring = report("a", 1, [0, 1], restoring=["scoring"])
    api = client({"a": restoring.encode(), "b": report("b", 1).encode()})
    response = await api.get("/readyz")
    assert response.status_code == 503
    assert body_of(response)["reasons"] == [
        "worker a is restoring the state of its scoring partitions",
        "no worker owns scoring partitions 2, 3 yet (a worker joining its group, or none running)",
    ]


# -- the setting ---------------------------------------------------------------------------


def test_the_stall_time_must_leave_room_for_the_checkpoint_intervals() -> None:
    assert Settings().checkpoint_stall_seconds == 60.0
    assert Settings(checkpoint_stall_seconds=2, catch_up_commit_interval_seconds=1)
    with pytest.raises(ValueError, match="at least twice the longest checkpoint interval"):
        Settings(checkpoint_stall_seconds=3)  # catching up, checkpoints come every 5 s
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(checkpoint_stall_seconds=0)
