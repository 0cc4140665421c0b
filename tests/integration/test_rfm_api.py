"""RFM of the whole current population over HTTP (issue 16, case 4): ties never split, the
most recent buyers R = 5 and the top spenders M = 5, equal buyers equal scores, and scores that
follow the population without waiting for a user's next event. Real broker, chDB, worker, API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pipeline.demo import topics_of
from schemas.client import EventProducer
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from tests.integration.conftest import Running, chdb_pipeline
from tests.integration.parts import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("rfm")
    prefix = f"rfm{uuid.uuid4().hex[:8]}"
    with chdb_pipeline(broker, tmp, prefix, MODEL_REFIT_SECONDS="3600") as pipeline:
        yield pipeline
    assert pipeline.exit_codes == (0, 0), f"{pipeline.api.tail()}\n{pipeline.worker.tail()}"


def paid(user: str, ts: datetime, amount: str) -> OrderEvent:
    return OrderEvent(event_id=f"{user}-o", type="order_paid", user_id=user, ts=ts,
                      order_id=f"{user}-order", amount=Decimal(amount), currency="CNY",
                      channel="live")  # fmt: skip


def send(running: Running, events: list[LiveEvent | OrderEvent]) -> None:
    with EventProducer(running.settings.kafka_bootstrap, topics=topics_of(running.settings)) as p:
        for event in events:
            p.send(event)
        p.flush()


def refit(running: Running) -> dict[str, Any]:
    """A requested refit: the purchase models cannot be fitted on one-order buyers (no
    repeat purchase), which answers 422 with what stays in use; the RFM scale and the rest
    are published all the same."""
    deadline = running.settings.refit_timeout_seconds
    response = httpx.post(running.base_url + "/v1/models/refit",
                          headers={"X-API-Key": "test-admin"}, timeout=deadline + 15)  # fmt: skip
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["error"].startswith("the purchase models were not refitted: BG/NBD")
    published: dict[str, Any] = detail["models"]
    assert published["refit"]["kept_previous"] is False  # none was fitted before
    assert published["btyd"] is None
    return published


def scores(running: Running, users: list[str], version: int) -> dict[str, tuple[int, int, int]]:
    """Each user's (r, f, m) as served, against the scale `version`."""
    out = {}
    for user in users:
        response = running.get(f"/v1/users/{user}")
        assert response.status_code == 200, response.text
        doc = response.json()
        assert doc["model_versions"]["rfm"] == f"rfm-{version}", doc["model_versions"]
        rfm = doc["rfm"]
        out[user] = (rfm["r"], rfm["f"], rfm["m"])
    return out


def served_all(running: Running, users: list[str]) -> None:
    def every() -> bool | None:
        return all(running.get(f"/v1/users/{u}").status_code == 200 for u in users) or None

    wait_until(every, 30, f"{len(users)} buyers served", step=0.1)


def test_recent_buyers_and_top_spenders_score_five_and_ties_never_split(
    running: Running,
) -> None:
    tag = uuid.uuid4().hex[:6]
    now = datetime.now(tz=UTC).replace(microsecond=0)
    five = [f"{tag}-hundred-{i}" for i in range(5)]
    send(running, [paid(u, now - timedelta(days=2), "100.00") for u in five])
    served_all(running, five)
    version = refit(running)["rfm"]["version"]
    # Five equal buyers: the population's most recent and top spenders, not "Hibernating".
    assert set(scores(running, five, version).values()) == {(5, 5, 5)}

    big = [f"{tag}-big-{i}" for i in range(10)]
    small = [f"{tag}-small-{i}" for i in range(10)]
    yesterday = now - timedelta(days=1)
    send(running, [paid(u, yesterday, "500.00") for u in big])
    send(running, [paid(u, yesterday, "10.00") for u in small])
    served_all(running, big + small)
    version = refit(running)["rfm"]["version"]
    got = scores(running, five + big + small, version)
    assert {got[u] for u in big} == {(5, 5, 5)}  # the latest buyers, the top spenders
    assert {got[u][0] for u in small} == {5}
    assert {got[u][2] for u in small} == {1}
    # The first five follow the population without an event of their own: all alike.
    assert len({got[u] for u in five}) == 1
    assert got[five[0]][0] == 1  # the oldest purchases now

    # One of the five comes back (a like, no purchase): its RFM inputs are unchanged, so it
    # keeps the scores of an identical buyer who did nothing.
    send(running, [LiveEvent(event_id=f"{five[0]}-like", type="like", user_id=five[0], ts=now,
                             room_id="r", session_id="s")])  # fmt: skip

    def liked() -> dict[str, Any] | None:
        doc: dict[str, Any] = running.get(f"/v1/users/{five[0]}").json()
        return doc if doc["interactions"] == 2 else None

    wait_until(liked, 20, "the like applied", step=0.05)
    again = scores(running, five[:2], version)
    assert again[five[0]] == again[five[1]] == got[five[1]]
