"""Every rejection reason through the real broker, duplicates across a restart, and accounting."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.demo import topics_of
from schemas.client import EventProducer
from tests.integration.conftest import (
    Running,
    books,
    chdb_pipeline,
    wait_worker_assigned,
    worker_metric,
)
from tests.integration.parts import Proc, lifecycle, read_all, wait_until

pytestmark = pytest.mark.integration

MAX_BYTES = 2048
NOW_MS = int(time.time() * 1000)


@pytest.fixture(scope="module")
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("dead")
    prefix = f"dl{uuid.uuid4().hex[:8]}"
    with chdb_pipeline(broker, tmp, prefix, MAX_MESSAGE_BYTES=str(MAX_BYTES)) as pipeline:
        yield pipeline


def order(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"e-{uuid.uuid4().hex}",
        "type": "order_paid",
        "user_id": "u-bad",
        "ts": NOW_MS - 60_000,
        "order_id": "o-1",
        "amount": 10,
        "currency": "CNY",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def watch(**fields: Any) -> dict[str, Any]:
    base = {k: v for k, v in order().items() if k in ("event_id", "user_id", "ts")}
    base.update(type="watch", room_id="r", session_id="s", seconds=60)
    base.update(fields)
    return base


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


# (name, topic kind, original bytes, reason, field)
BAD: list[tuple[str, str, bytes, str, str | None]] = [
    ("not json", "order", b"{oops", "not_json", None),
    ("not utf-8", "order", b'\xff\xfe{"a": 1}', "not_utf8", None),
    ("array", "order", dumps([order()]), "not_an_object", None),
    ("scalar", "order", b"42", "not_an_object", None),
    ("no user_id", "order", dumps(order(user_id=None)), "missing_field", "user_id"),
    ("empty user_id", "order", dumps(order(user_id="")), "empty_field", "user_id"),
    ("blank user_id", "order", dumps(order(user_id="   ")), "empty_field", "user_id"),
    ("unknown type", "order", dumps(order(type="order_shipped")), "unknown_type", "type"),
    ("no event_id", "order", dumps(order(event_id=None)), "missing_field", "event_id"),
    ("slash in user_id", "order", dumps(order(user_id="bh/slash10")), "invalid_field", "user_id"),
    (
        "JPY with minor units",
        "order",
        dumps(order(amount="1.50", currency="JPY")),
        "invalid_amount",
        "amount",
    ),
    (
        "huge amount",
        "order",
        dumps(order(amount="1500000000000000.00", currency="USD")),
        "invalid_amount",
        "amount",
    ),
    ("epoch seconds", "live", dumps(watch(ts=1796039086)), "invalid_timestamp", "ts"),
    ("negative amount", "order", dumps(order(amount=-3.5)), "invalid_amount", "amount"),
    ("NaN amount", "order", dumps(order(amount="NaN")), "invalid_amount", "amount"),
    ("text amount", "order", dumps(order(amount="ten")), "invalid_amount", "amount"),
    ("unknown currency", "order", dumps(order(currency="XYZ")), "unknown_currency", "currency"),
    ("bad ts", "order", dumps(order(ts="last tuesday")), "invalid_timestamp", "ts"),
    ("future ts", "order", dumps(order(ts=NOW_MS + 86_400_000)), "future_timestamp", "ts"),
    ("oversized", "order", dumps(order(props={"blob": "x" * MAX_BYTES})), "too_large", None),
    ("user_id number", "order", dumps(order(user_id=12345)), "wrong_type", "user_id"),
    ("seconds text", "live", dumps(watch(seconds="long")), "wrong_type", "seconds"),
]


def test_every_rejection_reason_reaches_dead_letters(running: Running) -> None:
    topics = {"order": running.settings.topic_order, "live": running.settings.topic_live}
    dead_before = worker_metric(running, "lifecycle_dead_letters_total")
    with EventProducer(running.settings.kafka_bootstrap, topics=topics_of(running.settings)) as p:
        for name, kind, raw, _, _ in BAD:
            p.send_raw(topics[kind], raw, key=name.encode())
        p.flush()

    def all_there() -> list[Any] | None:
        found = read_all(running.settings.kafka_bootstrap, running.settings.topic_dead_letters)
        return found if len(found) >= len(BAD) else None

    records = wait_until(all_there, 30, f"{len(BAD)} dead letters", step=0.2)
    assert len(records) == len(BAD)
    by_key = {record.key.decode(): json.loads(record.value) for record in records}
    originals = {
        (kind, r.partition, r.offset): r.value
        for kind in topics
        for r in read_all(running.settings.kafka_bootstrap, topics[kind])
    }
    for name, kind, raw, reason, field in BAD:
        body = by_key[name]
        assert (body["reason"], body["field"]) == (reason, field), (name, body)
        assert body["detail"], name
        assert body["topic"] == topics[kind]
        assert base64.b64decode(body["value_b64"]) == raw, name
        assert originals[(kind, body["partition"], body["offset"])] == raw, name
    assert worker_metric(running, "lifecycle_dead_letters_total") == dead_before + len(BAD)
    assert running.worker.alive()


def _balanced(running: Running) -> bool:
    events_in, accounted = books(running)
    return events_in > 0 and events_in == accounted


def _version(running: Running, user_id: str) -> int | None:
    response = running.get(f"/v1/users/{user_id}")
    return response.json()["version"] if response.status_code == 200 else None  # type: ignore[no-any-return]


def test_duplicates_are_dropped_even_after_a_worker_restart(running: Running) -> None:
    user = f"dup-{uuid.uuid4().hex[:8]}"
    first = dumps(order(user_id=user, event_id=f"{user}-1"))
    topic = running.settings.topic_order
    with EventProducer(running.settings.kafka_bootstrap) as p:
        p.send_raw(topic, first, key=user.encode())
        p.send_raw(topic, first, key=user.encode())
        p.flush()
    wait_until(lambda: worker_metric(running, "lifecycle_duplicates_total") == 1, 15, "1 duplicate")
    assert _version(running, user) == 1
    wait_until(lambda: _balanced(running), 10, "in == scored + duplicates + dead letters")

    # Restart the worker: its state comes back from the changelog, and with it the seen ids.
    assert running.worker.stop() == 0, running.worker.tail()
    running.worker = Proc("worker", lifecycle("worker"), running.env, running.tmp / "worker2.log")
    wait_worker_assigned(running)
    second = dumps(order(user_id=user, event_id=f"{user}-2", order_id="o-2", amount=5))
    with EventProducer(running.settings.kafka_bootstrap) as p:
        p.send_raw(topic, first, key=user.encode())
        p.send_raw(topic, second, key=user.encode())
        p.flush()
    wait_until(lambda: _version(running, user) == 2, 30, "the new event after the restart")
    assert worker_metric(running, "lifecycle_duplicates_total") == 1
    document = running.get(f"/v1/users/{user}").json()
    assert document["order_count"] == 2
    assert document["monetary"] == pytest.approx(15.0)
    wait_until(lambda: _balanced(running), 10, "in == scored + duplicates + dead letters")
