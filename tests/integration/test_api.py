"""The HTTP API and bad-input handling on one running pipeline: real broker, chDB, worker, API."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.demo import topics_of
from pipeline.settings import Settings
from schemas.client import EventProducer
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from tests.integration.conftest import (
    Running,
    chdb_pipeline,
    worker_metric,
)
from tests.integration.parts import Proc, free_port, lifecycle, read_all, wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("api")
    with chdb_pipeline(broker, tmp, f"api{uuid.uuid4().hex[:8]}") as pipeline:
        yield pipeline
    # A stop request is a clean exit: both processes end with code 0 on SIGTERM.
    assert pipeline.exit_codes == (0, 0), f"{pipeline.api.tail()}\n{pipeline.worker.tail()}"


def document(running: Running, user_id: str, min_version: int) -> dict[str, Any]:
    """The user's score document once its version reached `min_version`."""

    def served() -> dict[str, Any] | None:
        response = running.get(f"/v1/users/{user_id}")
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if body["version"] >= min_version else None

    return wait_until(served, 15, f"version {min_version} of {user_id}'s document", step=0.05)


def send(running: Running, *events: LiveEvent | OrderEvent) -> None:
    with EventProducer(running.settings.kafka_bootstrap, topics=topics_of(running.settings)) as p:
        for event in events:
            p.send(event)
        p.flush()


def order(
    prefix: str, user_id: str, n: int, kind: str, amount: str, currency: str, order: int = 1
) -> OrderEvent:
    return OrderEvent(
        event_id=f"{prefix}-{n}",
        type=kind,  # type: ignore[arg-type]
        user_id=user_id,
        ts=T0 + timedelta(minutes=n),
        order_id=f"{prefix}-order-{order}",
        amount=Decimal(amount),
        currency=currency,
        channel="live",
    )


def read_topic(running: Running, topic: str) -> list[Any]:
    return read_all(running.settings.kafka_bootstrap, topic)


def test_health_readiness_and_metrics_need_no_key(running: Running) -> None:
    assert running.get("/healthz", key=None).status_code == 200
    ready = running.get("/readyz", key=None)
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert isinstance(ready.json()["users"], int)
    assert running.get("/v1/users/someone", key=None).status_code == 401
    metrics = running.get("/metrics", key=None)
    assert metrics.status_code == 200
    assert "lifecycle_api_request_seconds" in metrics.text
    counts = {
        (sample.labels["route"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(metrics.text)
        if family.name == "lifecycle_api_request_seconds"
        for sample in family.samples
        if sample.name.endswith("_count")
    }
    assert counts.get(("/healthz", "200"), 0) >= 1
    assert counts.get(("/readyz", "200"), 0) >= 1
    assert counts.get(("/v1/users/{user_id}", "401"), 0) >= 1


def test_users_need_a_known_key_and_unknown_users_are_404(running: Running) -> None:
    path = f"/v1/users/nobody-{uuid.uuid4().hex}"
    missing = running.get(path, key=None)
    assert missing.status_code == 401
    assert "X-API-Key" in missing.json()["detail"]
    wrong = running.get(path, key="not-a-key")
    assert wrong.status_code == 401
    assert wrong.json()["detail"]
    unknown = running.get(path)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/json")
    assert "nobody-" in unknown.json()["detail"]
    assert running.get("/v1/users/" + "x" * 200).status_code == 422

    user = f"admin-reader-{uuid.uuid4().hex[:8]}"
    send(running, order(user, user, 1, "order_paid", "12.50", "CNY"))
    document(running, user, 1)
    as_admin = running.get(f"/v1/users/{user}", key="test-admin")
    assert as_admin.status_code == 200
    assert as_admin.json()["user_id"] == user
    assert as_admin.json()["monetary"] == pytest.approx(12.50)


def test_openapi_lists_the_user_route(running: Running) -> None:
    response = running.get("/openapi.json", key=None)
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "get" in paths["/v1/users/{user_id}"]
    assert "/metrics" not in paths


def test_a_user_moves_through_stages_with_money_in_the_base_currency(running: Running) -> None:
    prefix = f"seq{uuid.uuid4().hex[:8]}"
    user = f"{prefix}-bob"
    send(
        running,
        LiveEvent(
            event_id=f"{prefix}-0",
            type="room_enter",
            user_id=user,
            ts=T0,
            room_id="room-1",
            session_id="s-1",
        ),
    )
    doc = document(running, user, 1)
    assert doc["stage"] == "potential"
    assert doc["order_count"] == 0
    assert doc["currency"] == "CNY"

    send(running, order(prefix, user, 1, "order_paid", "100", "CNY"))
    doc = document(running, user, doc["version"] + 1)
    assert doc["stage"] == "new"
    assert doc["order_count"] == 1
    assert doc["monetary"] == pytest.approx(100.0)

    send(running, order(prefix, user, 2, "order_refunded", "40", "CNY"))
    doc = document(running, user, doc["version"] + 1)
    assert doc["monetary"] == pytest.approx(60.0)
    assert doc["refund_count"] == 1
    assert doc["order_count"] == 1

    rate = Settings().fx_rates["USD"]
    send(running, order(prefix, user, 3, "order_paid", "10", "USD", order=2))
    doc = document(running, user, doc["version"] + 1)
    assert doc["order_count"] == 2
    assert doc["currency"] == "CNY"
    assert doc["monetary"] == pytest.approx(60.0 + 10 * rate)
    assert doc["last_event_at"].startswith("2026-03-02T10:03:00")


def test_bad_input_is_dead_lettered_and_the_worker_goes_on(running: Running) -> None:
    prefix = f"bad{uuid.uuid4().hex[:8]}"
    topic = running.settings.topic_order

    def event(**fields: object) -> dict[str, object]:
        base: dict[str, object] = {
            "event_id": f"{prefix}-e",
            "type": "order_paid",
            "user_id": f"{prefix}-u",
            "ts": "2026-03-02T10:00:00Z",
            "order_id": "o-1",
            "amount": 10,
            "currency": "CNY",
        }
        base.update(fields)
        return {k: v for k, v in base.items() if v is not None}

    bad: list[tuple[bytes | None, bytes, str]] = [
        (None, f"not json {prefix} {{".encode(), "not_json"),
        (b"k-array", json.dumps([prefix, 1]).encode(), "not_an_object"),
        (b"k-neg", json.dumps(event(amount=-5)).encode(), "invalid_amount"),
        (b"k-xyz", json.dumps(event(currency="XYZ")).encode(), "unknown_currency"),
        (b"k-nouser", json.dumps(event(user_id=None)).encode(), "missing_field"),
    ]
    dead_before = worker_metric(running, "lifecycle_dead_letters_total")
    good_user = f"{prefix}-good"
    with EventProducer(running.settings.kafka_bootstrap, topics=topics_of(running.settings)) as p:
        for key, value, _ in bad:
            p.send_raw(topic, value, key=key)
        p.send(order(prefix, good_user, 9, "order_paid", "8.80", "CNY"))
        p.flush()

    def five_dead_letters() -> list[Any] | None:
        records = read_topic(running, running.settings.topic_dead_letters)
        return records if len(records) >= len(bad) else None

    records = wait_until(five_dead_letters, 20, "5 dead letters", step=0.2)
    assert len(records) == len(bad)
    inputs = {(r.partition, r.offset): r.value for r in read_topic(running, topic)}
    by_value = {}
    for record in records:
        body = json.loads(record.value)
        by_value[base64.b64decode(body["value_b64"])] = (record, body)
    assert set(by_value) == {value for _, value, _ in bad}
    for key, value, reason in bad:
        record, body = by_value[value]
        assert body["reason"] == reason, body
        assert body["detail"]
        assert body["topic"] == topic
        assert inputs[(body["partition"], body["offset"])] == value, body
        assert record.key == key
        assert body["key"] == (key.decode() if key is not None else None)

    good = document(running, good_user, 1)
    assert good["stage"] == "new"
    assert good["monetary"] == pytest.approx(8.80)

    wait_until(
        lambda: worker_metric(running, "lifecycle_dead_letters_total") == dead_before + len(bad),
        10,
        "the dead-letter counter to grow by 5",
    )

    def balanced() -> bool:
        scored = worker_metric(running, "lifecycle_events_scored_total")
        duplicates = worker_metric(running, "lifecycle_duplicates_total")
        dead = worker_metric(running, "lifecycle_dead_letters_total")
        return worker_metric(running, "lifecycle_events_in_total") == scored + duplicates + dead

    wait_until(balanced, 10, "events in == scored + duplicates + dead letters")


def test_dev_keys_are_refused_outside_the_embedded_default(running: Running) -> None:
    env = dict(running.env)
    env.pop("EMBEDDED", None)
    env.update({"API_KEYS": '["dev"]', "API_PORT": str(free_port())})
    proc = Proc("api-dev-keys", lifecycle("api"), env, running.tmp / "api-dev-keys.log")
    try:
        code = proc.proc.wait(timeout=60)
    finally:
        proc.stop(grace=5)
    output = proc.log.read_text(errors="replace")
    assert code != 0, output
    assert "embedded default only" in output
