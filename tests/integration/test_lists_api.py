"""GET /v1/users (lists) and GET /v1/segments (counts) from the current scores, against the
documents the API serves one by one."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipeline.demo import topics_of
from schemas.client import EventProducer
from schemas.events import LiveEvent, OrderEvent
from tests.integration.conftest import Running, chdb_pipeline
from tests.integration.parts import wait_until

pytestmark = pytest.mark.integration

BUYERS = [f"b{n}" for n in range(7)]
WATCHERS = ["w1", "w2", "w3"]


@pytest.fixture(scope="module")
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("lists")
    env = {"MODEL_REFIT_SECONDS": "3600", "REFIT_TIMEOUT_SECONDS": "10"}
    with chdb_pipeline(broker, tmp, f"ls{uuid.uuid4().hex[:8]}", **env) as pipeline:
        now = datetime.now(tz=UTC)
        with EventProducer(pipeline.settings.kafka_bootstrap,
                           topics=topics_of(pipeline.settings)) as producer:  # fmt: skip
            for user in BUYERS + WATCHERS:
                producer.send(LiveEvent(event_id=f"{user}-l", type="like", user_id=user,
                                        ts=now - timedelta(days=20), room_id="r1",
                                        session_id="s1"))  # fmt: skip
            for n, user in enumerate(BUYERS):
                for k in range(1 + n % 3):
                    producer.send(OrderEvent(
                        event_id=f"{user}-o{k}", type="order_paid", user_id=user,
                        ts=now - timedelta(days=10 - n - k), order_id=f"o{k}",
                        amount=f"{50 * (n + 1)}.00", currency="CNY", channel="live",
                    ))  # fmt: skip
        users = BUYERS + WATCHERS
        wait_until(lambda: all(pipeline.get(f"/v1/users/{u}").status_code == 200 for u in users),
                   30, "every user to be served")  # fmt: skip
        # The RFM scale is published with a refit (the purchase models cannot be fitted on
        # seven buyers: 422, the scale all the same).
        httpx.post(pipeline.base_url + "/v1/models/refit", headers={"X-API-Key": "test-admin"},
                   timeout=30)  # fmt: skip
        wait_until(lambda: (pipeline.get("/v1/models").json().get("rfm") or None), 30,
                   "a published RFM scale")  # fmt: skip
        yield pipeline


def served(running: Running, user: str) -> dict[str, Any]:
    document: dict[str, Any] = running.get(f"/v1/users/{user}").json()
    return document


def test_segments_count_what_the_documents_say(running: Running) -> None:
    answer = running.get("/v1/segments")
    assert answer.status_code == 200, answer.text
    counts = answer.json()
    documents = {u: served(running, u) for u in BUYERS + WATCHERS}
    assert counts["total_users"] == len(documents)
    assert counts["buyers"] == len(BUYERS)
    stages = Counter(d["stage"] for d in documents.values())
    assert counts["by_stage"] == {s: stages[s] for s in counts["by_stage"]}
    assert set(counts["by_stage"]) == {"potential", "new", "active", "silent", "churned", "none"}
    rfm = [d["rfm"] for d in documents.values() if d["rfm"]]
    assert counts["by_segment"] == dict(sorted(Counter(r["segment"] for r in rfm).items()))
    assert counts["by_class"] == dict(sorted(Counter(r["rfm_class"] for r in rfm).items()))
    assert counts["rfm_version"] == documents[BUYERS[0]]["model_versions"]["rfm"]


def test_lists_combine_filters_and_page_by_cursor(running: Running) -> None:
    documents = {u: served(running, u) for u in BUYERS + WATCHERS}
    segment = documents[BUYERS[-1]]["rfm"]["segment"]
    stage = documents[BUYERS[-1]]["stage"]
    want = sorted(
        u for u, d in documents.items()
        if d["stage"] == stage and d["rfm"] and d["rfm"]["segment"] == segment
    )  # fmt: skip
    got: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"stage": stage, "segment": segment, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = running.get("/v1/users?" + httpx.QueryParams(params).__str__())
        assert page.status_code == 200, page.text
        body = page.json()
        got += [item["user_id"] for item in body["items"]]
        assert all(item["segment"] == segment for item in body["items"])
        cursor = body["cursor"]
        if cursor is None:
            break
    assert got == want
    everyone = running.get("/v1/users?limit=1000").json()
    assert [i["user_id"] for i in everyone["items"]] == sorted(documents)
    assert everyone["cursor"] is None


def test_bad_filters_and_cursors_are_422_and_keys_are_needed(running: Running) -> None:
    for query in ("class=D", "segment=Whales", "stage=gone", "limit=0", "cursor=%25%25"):
        answer = running.get(f"/v1/users?{query}")
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["detail"]
    assert running.get("/v1/users", key=None).status_code == 401
    assert running.get("/v1/segments", key=None).status_code == 401
