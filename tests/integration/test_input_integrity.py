"""The cases of input that looks valid, through the real broker, worker, chDB and API: orders
counted once, refunds capped, held until their payment or refused, free orders, minor units,
plausible times, addressable ids and reused event ids, each with its right value."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from pipeline.demo import topics_of
from schemas.client import EventProducer
from tests.integration.conftest import Running, books, chdb_pipeline, worker_metric
from tests.integration.parts import read_all, wait_until

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:6]
TS = int(time.time() * 1000) - 3 * 3_600_000  # three hours ago
# The latest event time sent below: a refund held for its payment is dated at it, so it is
# within the lateness of its partition's watermark whichever partition its user hashes to.
LATEST = TS + 3_660_000


def uid(name: str) -> str:
    return f"{name}-{RUN}"


def order(event_id: str, user: str, order_id: str, amount: Any, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": uid(event_id),
        "type": "order_paid",
        "user_id": user,
        "ts": TS,
        "order_id": order_id,
        "amount": amount,
        "currency": "CNY",
        **fields,
    }


def live(event_id: str, user: str, **fields: Any) -> dict[str, Any]:
    base = {"event_id": uid(event_id), "type": "room_enter", "user_id": user, "ts": TS}
    return {**base, "room_id": "r1", "session_id": "s1", **fields}


U3, U4, UNKNOWN, FREE, IDS, REUSE, BIG = (
    uid(n) for n in ("u3", "u4", "unknown", "free", "ids.a:b@c+d=e_f", "reuse", "u24")
)
# (topic kind, event) in the order they are sent; each user's events are in one partition.
SENT: list[tuple[str, dict[str, Any]]] = [
    ("order", order("e3a", U3, "o-3", "100.00")),
    ("order", order("e3b", U3, "o-3", "100.00", ts=TS + 30_000)),
    ("order", order("e4a", U4, "o-4", "100.00")),
    ("order", order("e4b", U4, "o-4", "300.00", type="order_refunded", ts=TS + 60_000)),
    ("order", order("e9", UNKNOWN, "o-unknown", "50.00", type="order_refunded")),
    ("order", order("f1", FREE, "o-free", 0)),
    ("order", order("jpy", FREE, "o-jpy", "1.50", currency="JPY")),
    ("order", order("krw", FREE, "o-krw", "0.01", currency="KRW")),
    ("order", order("e24", BIG, "o-24", "1500000000000000.00", currency="USD")),
    ("live", live("secs", uid("secs"), ts=1796039086)),
    ("live", live("slash", "bh/slash10")),
    ("live", live("ids", IDS)),
    ("order", order("bh-e2", REUSE, "o-r1", "100.00")),
    ("order", order("bh-e2", REUSE, "o-r2", "500.00")),
]
# Sent once e9 is held (on another topic it could be read first, and e9 would then be refused
# at once as too late instead of held): it moves the watermark an hour (LATENESS_SECONDS) past
# e9, which then expires.
EXPIRES_E9 = ("live", live("e9-later", UNKNOWN, ts=LATEST))
# event_id: (reason, field) of every event that must be dead-lettered.
REFUSED = {
    uid("e9"): ("unknown_order", "order_id"),
    uid("jpy"): ("invalid_amount", "amount"),
    uid("krw"): ("invalid_amount", "amount"),
    uid("e24"): ("invalid_amount", "amount"),
    uid("secs"): ("invalid_timestamp", "ts"),
    uid("slash"): ("invalid_field", "user_id"),
    uid("bh-e2"): ("conflicting_duplicate", "event_id"),
}


@pytest.fixture(scope="module")
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("integrity")
    with chdb_pipeline(broker, tmp, f"in{RUN}") as pipeline:
        topics = {"order": pipeline.settings.topic_order, "live": pipeline.settings.topic_live}
        with EventProducer(
            pipeline.settings.kafka_bootstrap, topics=topics_of(pipeline.settings)
        ) as p:
            for kind, event in SENT:
                key = str(event["user_id"]).encode()
                p.send_raw(topics[kind], json.dumps(event).encode(), key=key)
            p.flush()
            wait_until(lambda: worker_metric(pipeline, "lifecycle_held_refunds") == 1, 30, "e9")
            kind, event = EXPIRES_E9
            p.send_raw(topics[kind], json.dumps(event).encode(), key=UNKNOWN.encode())
            p.flush()
        yield pipeline


def document(running: Running, user_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        response = running.get(f"/v1/users/{quote(user_id, safe='')}")
        return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

    return wait_until(found, 30, f"the document of {user_id}", step=0.1)


def dead_letters(running: Running) -> dict[str, dict[str, Any]]:
    def all_there() -> dict[str, dict[str, Any]] | None:
        found = {}
        for record in read_all(
            running.settings.kafka_bootstrap, running.settings.topic_dead_letters
        ):
            body = json.loads(record.value)
            event = json.loads(base64.b64decode(body["value_b64"]))
            found[event["event_id"]] = {**body, "event": event}
        return found if set(REFUSED) <= set(found) else None

    return wait_until(all_there, 30, "the dead letters", step=0.2)


def test_an_order_paid_twice_counts_once(running: Running) -> None:
    doc = document(running, U3)
    assert (doc["order_count"], doc["monetary"]) == (1, 100.0)
    wait_until(
        lambda: worker_metric(running, "lifecycle_duplicate_orders_total") == 1, 15, "1 dup order"
    )
    rules = [
        json.loads(r.value)["rule"]
        for r in read_all(running.settings.kafka_bootstrap, running.settings.topic_triggers)
        if r.key == U3.encode()
    ]
    assert "repeat_buyer" not in rules


def test_a_refund_is_capped_and_an_unknown_one_refused(running: Running) -> None:
    doc = document(running, U4)
    assert (doc["monetary"], doc["order_count"], doc["refund_count"]) == (0.0, 1, 1)
    letter = dead_letters(running)[uid("e9")]
    assert (letter["reason"], letter["offset"]) == ("unknown_order", -1)  # held, then refused
    assert "lateness" in letter["detail"]
    assert letter["event"]["order_id"] == "o-unknown"
    doc = document(running, UNKNOWN)
    assert (doc["monetary"], doc["order_count"], doc["refund_count"]) == (0.0, 0, 0)


HOLD, GONE = uid("hold"), uid("gone")
EXTRA = 4  # EXPIRES_E9 and the events sent by the two tests below


def test_a_refund_before_its_payment_waits_for_it(running: Running) -> None:
    dead_letters(running)  # e9 resolved: nothing else is held
    wait_until(lambda: worker_metric(running, "lifecycle_held_refunds") == 0, 15, "none held")
    refund = order("h-r", HOLD, "o-h", "30.00", type="order_refunded", ts=LATEST + 60_000)
    payment = order("h-p", HOLD, "o-h", "100.00", ts=LATEST)
    topics = topics_of(running.settings)
    with EventProducer(running.settings.kafka_bootstrap, topics=topics) as p:
        p.send_raw(running.settings.topic_order, json.dumps(refund).encode(), key=HOLD.encode())
        p.flush()
        wait_until(lambda: worker_metric(running, "lifecycle_held_refunds") == 1, 30, "held")
        assert running.get(f"/v1/users/{HOLD}").status_code == 404  # nothing counted yet
        p.send_raw(running.settings.topic_order, json.dumps(payment).encode(), key=HOLD.encode())
        p.flush()
    doc = document(running, HOLD)
    assert (doc["monetary"], doc["order_count"], doc["refund_count"]) == (70.0, 1, 1)
    assert worker_metric(running, "lifecycle_held_refunds") == 0
    assert uid("h-r") not in dead_letters(running)


def test_a_free_order_is_an_order_and_minor_units_hold(running: Running) -> None:
    doc = document(running, FREE)
    assert (doc["order_count"], doc["free_order_count"], doc["monetary"]) == (1, 1, 0.0)
    assert doc["stage"] == "new"
    assert doc["mean_order_value"] is None


def test_every_refused_event_is_a_dead_letter_with_its_reason(running: Running) -> None:
    letters = dead_letters(running)
    for event_id, (reason, field) in REFUSED.items():
        assert (letters[event_id]["reason"], letters[event_id]["field"]) == (reason, field)
    assert "epoch seconds" in letters[uid("secs")]["detail"]
    assert running.get(f"/v1/users/{uid('secs')}").status_code == 404


def test_an_accepted_id_is_addressable(running: Running) -> None:
    assert document(running, IDS)["user_id"] == IDS
    assert running.get(f"/v1/users/{IDS}").status_code == 200  # unencoded too


def test_a_reused_event_id_keeps_the_first_payload(running: Running) -> None:
    doc = document(running, REUSE)
    assert (doc["order_count"], doc["monetary"]) == (1, 100.0)
    refused = dead_letters(running)[uid("bh-e2")]
    assert refused["event"]["amount"] == "500.00"  # the producer finds the second payload


def test_an_erased_person_s_held_refunds_go_with_them(running: Running) -> None:
    wait_until(lambda: worker_metric(running, "lifecycle_held_refunds") == 0, 15, "none held")
    refund = order("g-r", GONE, "o-g", "30.00", type="order_refunded", ts=LATEST)
    with EventProducer(running.settings.kafka_bootstrap, topics=topics_of(running.settings)) as p:
        p.send_raw(running.settings.topic_order, json.dumps(refund).encode(), key=GONE.encode())
        p.flush()
    wait_until(lambda: worker_metric(running, "lifecycle_held_refunds") == 1, 30, "held")
    answer = httpx.delete(
        f"{running.base_url}/v1/users/{GONE}", headers={"X-API-Key": "test-admin"}, timeout=5
    )
    assert answer.status_code == 202, answer.text
    location = answer.headers["Location"]

    def complete() -> dict[str, Any] | None:
        body: dict[str, Any] = running.get(location).json()
        return body if body["status"] == "complete" else None

    assert wait_until(complete, 30, "the erasure")["state_found"] is True
    assert worker_metric(running, "lifecycle_held_refunds") == 0
    erased = f'lifecycle_erased_events_total{{topic="{running.settings.topic_order}"}}'
    assert worker_metric(running, erased) == 1


def test_the_books_balance(running: Running) -> None:
    dead_letters(running)

    def balanced() -> bool:
        events_in, accounted = books(running)
        return events_in == len(SENT) + EXTRA == accounted

    wait_until(balanced, 15, "in == scored + duplicates + dead letters")
    assert worker_metric(running, "lifecycle_duplicates_total") == 1  # e3b, a duplicate order
