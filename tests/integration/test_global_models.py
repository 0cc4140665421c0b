"""Models of the whole population: with three workers, every user's scores equal those of a
single worker on the same events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from pipeline.demo import topics_of
from tests.integration.conftest import (
    Running,
    chdb_pipeline,
    pipeline_env,
    start_pipeline,
    wait_worker_assigned,
)
from tests.integration.parts import Proc, free_port, lifecycle, metric_at, wait_until
from tests.integration.test_crash_recovery import assert_matches_reference, send, workload

pytestmark = pytest.mark.integration

# Both deployments: no timed refit, and a churn model that never acts (its probability in a
# document is the one of the model in use when the document was written; see the docs).
SETTINGS = {"MODEL_REFIT_SECONDS": "3600", "CHURN_MIN_LABELS": "100000"}


@pytest.fixture
def three_workers(
    broker: str, clickhouse_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Running, list[int]]]:
    """A pipeline of three workers on the ClickHouse server (which they can share), each
    holding at least one of the four partitions; yields it and the workers' metrics ports."""
    tmp = tmp_path_factory.mktemp("three")
    prefix = f"tw{uuid.uuid4().hex[:8]}"
    env = pipeline_env(broker, f"clickhouse://127.0.0.1:{clickhouse_port}/{prefix}", tmp, prefix)
    env.update(SETTINGS)
    running = start_pipeline(env, tmp)
    others: list[Proc] = []
    try:
        wait_worker_assigned(running)
        ports = [running.settings.worker_metrics_port]
        for n in (2, 3):
            port = free_port()
            worker_env = dict(env, DATA_DIR=str(tmp / f"data{n}"), WORKER_METRICS_PORT=str(port))
            others.append(Proc(f"worker-{n}", lifecycle("worker"), worker_env,
                               tmp / f"worker-{n}.log"))  # fmt: skip
            ports.append(port)

        inputs = len(running.settings.input_topics)

        def spread() -> bool:
            # The gauge counts input topic partitions: four topics per partition number.
            owned = [metric_at(p, "lifecycle_worker_assigned_partitions") for p in ports]
            return all(o >= inputs for o in owned) and sum(owned) == 4 * inputs

        wait_until(spread, 90, "the four partitions to be spread over three workers", step=0.5)
        yield running, ports
    finally:
        for other in others:
            other.stop()
        running.api.stop()
        running.worker.stop()


def refit(running: Running) -> dict[str, Any]:
    response = httpx.post(
        running.base_url + "/v1/models/refit", headers={"X-API-Key": "test-admin"}, timeout=60
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


AS_OF = "2030-01-01T00:00:00Z"


def scores(running: Running, user_id: str) -> dict[str, Any]:
    """A user's scores: RFM (the recency in days aside: it is counted to the time the
    latest document was written, which depends on when sweeps ran, not on the models) and
    the purchase outlook at one fixed time."""
    response = running.get(f"/v1/users/{user_id}?as_of={AS_OF}")
    assert response.status_code == 200, response.text
    document = orjson.loads(response.content)
    rfm = document["rfm"]
    return {
        "rfm": {k: v for k, v in rfm.items() if k != "recency_days"} if rfm else None,
        "purchase": document["purchase"],
        "churn_probability": document["churn_probability"],
        "versions": {k: document["model_versions"][k] for k in ("rfm", "btyd")},
    }


def test_three_workers_score_every_user_as_one_worker_does(
    three_workers: tuple[Running, list[int]],
    broker: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    many, _ = three_workers
    tmp = tmp_path_factory.mktemp("one")
    with chdb_pipeline(broker, tmp, f"ow{uuid.uuid4().hex[:8]}", **SETTINGS) as one:
        messages = workload(one, users=120, days=150, seed=31)
        # The same events on the other deployment's topics.
        renamed = dict(zip(topics_of(one.settings).values(), topics_of(many.settings).values(),
                           strict=True))  # fmt: skip
        theirs = [(renamed[topic], key, value) for topic, key, value in messages]
        send(one, messages)
        send(many, theirs)
        assert_matches_reference(one, messages)
        assert_matches_reference(many, theirs)
        single, spread = refit(one), refit(many)
        users = sorted({key.decode() for _, key, _ in messages})
        # One model of the whole population: every partition's buyers, whichever worker
        # owns them, and no worker scores on its own part.
        assert spread["population"]["partitions"] == 4
        assert spread["population"]["users"] == single["population"]["users"] == len(users)
        assert spread["rfm"] == {**single["rfm"]}
        assert spread["btyd"] == single["btyd"]
        assert spread["gamma_gamma"] == single["gamma_gamma"]
        assert spread["churn"]["labels"] == single["churn"]["labels"]

        def differ() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
            pairs = {u: (scores(one, u), scores(many, u)) for u in users}
            return {u: pair for u, pair in pairs.items() if pair[0] != pair[1]}

        # The API serves every document on the models published last.
        last: dict[str, Any] = {}

        def equal() -> bool:
            last["differ"] = differ()
            return not last["differ"]

        try:
            wait_until(equal, 30, "every user's scores to be equal", step=0.5)
        except AssertionError:
            sample = dict(list(last["differ"].items())[:3])
            raise AssertionError(f"{len(last['differ'])} users differ, e.g. {sample}") from None
        # Scores there are: RFM of every buyer, a purchase outlook on the fitted models.
        buyers = [u for u in users if scores(many, u)["rfm"] is not None]
        assert len(buyers) > 20
        assert all(scores(many, u)["purchase"] is not None for u in buyers)
