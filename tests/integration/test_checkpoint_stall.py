"""Checkpoints that stop completing are seen: with ClickHouse away under a running worker that
has events to make durable, the API's /readyz answers 503 with the reason, the worker's
`lifecycle_checkpoint_stalled` is 1 and its log says why in one line; once the store is back
all of it clears. A worker killed with SIGKILL holds readiness back until another one reports
its partitions."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    Running,
    pipeline_env,
    start_pipeline,
    wait_worker_assigned,
    worker_metric,
)
from tests.integration.parts import Proc, free_port, lifecycle, start_clickhouse_server, wait_until
from tests.integration.test_crash_recovery import send, workload
from tests.integration.test_sink_outage import committed_offsets

pytestmark = pytest.mark.integration

STALLED = "checkpoints of the scoring engine have not completed for"
RECOVERED = "checkpoints of the scoring engine complete again"


def readyz(running: Running) -> tuple[int, dict[str, Any]]:
    response = running.get("/readyz", key=None)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def log_lines(running: Running, text: str) -> list[str]:
    return [line for line in running.worker.log.read_text().splitlines() if text in line]


def stalled(running: Running) -> float:
    return worker_metric(running, 'lifecycle_checkpoint_stalled{engine="scoring"}')


def test_stalled_checkpoints_make_readyz_not_ready_until_they_complete_again(
    broker: str, tmp_path: Path
) -> None:
    ports = (free_port(), free_port())
    server, tcp = start_clickhouse_server(tmp_path / "store", ports)
    prefix = f"cs{uuid.uuid4().hex[:8]}"
    env = pipeline_env(broker, f"clickhouse://127.0.0.1:{tcp}/{prefix}", tmp_path, prefix)
    env.update(
        MODEL_REFIT_SECONDS="3600",
        CHECKPOINT_STALL_SECONDS="3",
        CATCH_UP_COMMIT_INTERVAL_SECONDS="1",
    )
    running = start_pipeline(env, tmp_path)
    try:
        wait_worker_assigned(running)
        messages = workload(running, users=40, days=90, seed=29)
        first, second = messages[: len(messages) // 2], messages[len(messages) // 2 :]
        records = send(running, first)  # (end markers are records too: offsets count them)
        wait_until(
            lambda: sum(committed_offsets(running).values()) == records,
            60, "the first half committed",
        )  # fmt: skip
        wait_until(lambda: readyz(running)[0] == 200, 30, "/readyz ready with the worker")
        assert stalled(running) == 0
        assert log_lines(running, STALLED) == []

        # The store goes away while events come: checkpoints stop completing.
        server.stop()
        records_second = send(running, second)

        def not_ready() -> list[str] | None:
            code, body = readyz(running)
            reasons = [r for r in body.get("reasons", []) if STALLED in r]
            if code != 503 or not reasons or stalled(running) != 1:
                return None
            return reasons if log_lines(running, STALLED) else None

        reasons = wait_until(not_ready, 60, "/readyz 503 naming the stalled checkpoints")
        assert "is stalled" in reasons[0]
        assert "last failure: insert into" in reasons[0], reasons
        assert worker_metric(running, 'lifecycle_checkpoint_age_seconds{engine="scoring"}') >= 3
        assert sum(committed_offsets(running).values()) == records
        metrics = running.get("/metrics", key=None).text
        assert "lifecycle_api_ready 0.0" in metrics
        assert "lifecycle_api_stalled_workers 1.0" in metrics

        # Back on the same data and ports: everything is committed, and all of it clears.
        server, _ = start_clickhouse_server(tmp_path / "store", ports)
        wait_until(
            lambda: readyz(running)[0] == 200 and stalled(running) == 0,
            60, "/readyz ready again and the stall over",
        )  # fmt: skip
        wait_until(
            lambda: sum(committed_offsets(running).values()) == records + records_second,
            60, "everything committed once the store is back",
        )  # fmt: skip
        # One line when it began (however long it lasted) and one when it ended.
        errors = log_lines(running, STALLED)
        assert len(errors) == 1, errors
        assert "ERROR" in errors[0]
        assert "offsets are not committed and /readyz answers not ready" in errors[0]
        assert len(log_lines(running, RECOVERED)) == 1
        assert "lifecycle_api_ready 1.0" in running.get("/metrics", key=None).text

        # A worker killed outright stops reporting: its partitions have no live owner until
        # its replacement reports them; then the dead one is ignored.
        dead = f"{running.worker.proc.pid}"
        assert running.worker.stop(signal.SIGKILL) == -signal.SIGKILL

        def silent() -> list[str] | None:
            code, body = readyz(running)
            reasons = [r for r in body.get("reasons", []) if "has not reported for" in r]
            return reasons if code == 503 and reasons else None

        reasons = wait_until(silent, 30, "/readyz 503 naming the silent worker")
        assert f":{dead} has not reported" in reasons[0]
        running.worker = Proc("worker", lifecycle("worker"), env, tmp_path / "worker-2.log")
        wait_until(lambda: readyz(running)[0] == 200, 60, "/readyz ready with the new worker")
        _, body = readyz(running)
        assert body["workers"] == 1
    finally:
        running.api.stop()
        running.worker.stop()
        server.stop()
