"""POST /v1/events against the real broker and worker: per-event answers, the accepted
events scored, keys, and the body, batch and rate limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.conftest import Running, chdb_pipeline
from tests.integration.parts import wait_until

pytestmark = pytest.mark.integration

PRODUCERS = ["test-producer", "producer-b", "producer-c"]


@pytest.fixture(scope="module")
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("ingest")
    env = {
        "PRODUCER_API_KEYS": orjson.dumps(PRODUCERS).decode(),
        "INGEST_MAX_BYTES": "4096",
        "INGEST_MAX_EVENTS": "8",
        "INGEST_EVENTS_PER_SECOND": "4",  # bursts of 8
    }
    with chdb_pipeline(broker, tmp, f"in{uuid.uuid4().hex[:8]}", **env) as pipeline:
        yield pipeline


def post(
    running: Running, body: bytes, key: str | None = "test-producer", ndjson: bool = False
) -> httpx.Response:
    headers = {"Content-Type": "application/x-ndjson" if ndjson else "application/json"}
    if key is not None:
        headers["X-API-Key"] = key
    return httpx.post(running.base_url + "/v1/events", content=body, headers=headers, timeout=10)


def at(minutes_ago: int) -> str:
    return (datetime.now(tz=UTC) - timedelta(minutes=minutes_ago)).isoformat()


def like(user: str, n: int) -> dict[str, Any]:
    return {"event_id": f"{user}-l{n}", "type": "like", "user_id": user, "ts": at(10 - n),
            "room_id": "r1", "session_id": "s1"}  # fmt: skip


def paid(user: str, **changes: Any) -> dict[str, Any]:
    event = {"event_id": f"{user}-o1", "type": "order_paid", "user_id": user, "ts": at(5),
             "order_id": "o1", "amount": "99.00", "currency": "CNY", "channel": "live"}  # fmt: skip
    return {**event, **changes}


def test_each_event_is_answered_and_the_accepted_ones_are_scored(running: Running) -> None:
    user = f"u-{uuid.uuid4().hex[:6]}"
    batch = [
        like(user, 1),
        paid(user),
        {k: v for k, v in like(user, 2).items() if k != "user_id"},
        {**like(user, 3), "type": "wave"},
        paid(user, event_id=f"{user}-o2", order_id="o2", currency="XXX"),
        {k: v for k, v in like(user, 4).items() if k != "type"},
    ]
    response = post(running, orjson.dumps(batch))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 4)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4, 5]
    assert [r["status"] for r in results] == ["accepted", "accepted", "rejected", "rejected",
                                              "rejected", "rejected"]  # fmt: skip
    settings = running.settings
    assert (results[0]["topic"], results[1]["topic"]) == (settings.topic_live, settings.topic_order)
    assert (results[2]["reason"], results[2]["field"]) == ("missing_field", "user_id")
    assert (results[3]["reason"], results[3]["field"]) == ("unknown_type", "type")
    assert (results[4]["reason"], results[4]["field"]) == ("unknown_currency", "currency")
    assert (results[5]["reason"], results[5]["field"]) == ("missing_field", "type")
    assert all(r["detail"] for r in results[2:])

    def scored() -> dict[str, Any] | None:
        response = running.get(f"/v1/users/{user}")
        if response.status_code != 200:
            return None
        doc: dict[str, Any] = response.json()
        return doc if doc["order_count"] == 1 and doc["interactions"] >= 1 else None

    doc = wait_until(scored, 30, "the accepted events to be scored")
    assert doc["monetary"] == 99.0
    metrics = httpx.get(running.base_url + "/metrics", timeout=5).text
    assert (
        'lifecycle_api_ingested_events_total{outcome="rejected",reason="unknown_currency"}'
        in metrics
    )


def test_ndjson_lines_are_events_and_a_broken_line_is_rejected_alone(running: Running) -> None:
    user = f"u-{uuid.uuid4().hex[:6]}"
    body = orjson.dumps(like(user, 1)) + b"\n\n{not json\n" + orjson.dumps(like(user, 2)) + b"\n"
    response = post(running, body, key="producer-b", ndjson=True)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    assert results[1]["reason"] == "not_json"
    assert [(r["index"], r["line"]) for r in results] == [(0, 1), (1, 3), (2, 4)]


def test_only_producer_and_admin_keys_send(running: Running) -> None:
    body = orjson.dumps([like("u-keys", 1)])
    assert post(running, body, key=None).status_code == 401
    assert post(running, body, key="no-such-key").status_code == 401
    refused = post(running, body, key="test-key")  # a read key
    assert refused.status_code == 403
    assert refused.json()["detail"] == "this call needs a producer API key"
    assert post(running, body, key="test-admin").status_code == 200
    # A producer key reads nothing.
    assert running.get("/v1/users/u-keys", key="test-producer").status_code == 403


def test_limits_of_body_batch_and_rate(running: Running) -> None:
    too_many = orjson.dumps([like("u-lim", n) for n in range(9)])
    answer = post(running, too_many, key="producer-c")
    assert answer.status_code == 413
    assert "at most 8" in answer.json()["detail"]
    big = orjson.dumps([{**like("u-lim", 1), "text": "x" * 5000}])
    assert post(running, big, key="producer-c").status_code == 413
    not_a_batch = post(running, b'{"type": "like"}', key="producer-c")
    assert not_a_batch.status_code == 422
    assert "JSON array" in not_a_batch.json()["detail"]
    # A burst of eight events, then eight more at once: the second needs two seconds more.
    eight = orjson.dumps([like("u-rate", n) for n in range(8)])
    assert post(running, eight, key="producer-c").status_code == 200
    limited = post(running, eight, key="producer-c")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
