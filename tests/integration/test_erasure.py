"""Erasure of a person (PIPL) on the real broker, worker and ClickHouse (chDB and a server):
after `DELETE /v1/users/{id}` completes, the test looks in every store for the person."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaProducer
from rocksdict import Options, Rdict

from pipeline.demo import topics_of
from pipeline.store import decode_user
from schemas.chat import ChatEvent
from schemas.client import EventProducer
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from schemas.touch import TouchEvent
from sinks.ddl import PERSON_COLUMNS
from tests.integration.conftest import (
    Running,
    pipeline_env,
    start_pipeline,
    wait_worker_assigned,
    worker_metric,
)
from tests.integration.parts import read_all, wait_until
from tests.integration.test_sink_refusals import is_chdb, store

pytestmark = pytest.mark.integration

ERASED, KEPT = "erase-me", "keep-me"
ADMIN = {"X-API-Key": "test-admin"}


def history(user: str, now: datetime) -> list[Any]:
    """A like, two paid orders and a chat message, stamped in the last minutes (so the
    triggers fire: first_order, repeat_buyer)."""
    at = now - timedelta(minutes=5)
    return [
        LiveEvent(event_id=f"{user}-l", type="like", user_id=user, ts=at, room_id="r1",
                  session_id="s1"),
        OrderEvent(event_id=f"{user}-o1", type="order_paid", user_id=user,
                   ts=at + timedelta(minutes=1), order_id="o1", amount="120.00",
                   currency="CNY", channel="live"),
        ChatEvent(event_id=f"{user}-c", type="message", user_id=user,
                  ts=at + timedelta(minutes=2), group_id="g1", text="口红很好看"),
        OrderEvent(event_id=f"{user}-o2", type="order_paid", user_id=user,
                   ts=at + timedelta(minutes=3), order_id="o2", amount="80.00",
                   currency="CNY", channel="live"),
    ]  # fmt: skip


def feed(running: Running) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = running.get("/v1/triggers?limit=1000").json()["items"]
    return items


def about(items: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
    return [t for t in items if t["subject_type"] == "user" and t["subject_id"] == user]


def last_by_key(records: list[Any], key: str) -> list[Any]:
    return [r for r in records if r.key == key.encode()]


def stop(running: Running) -> None:
    assert running.api.stop() == 0
    assert running.worker.stop() == 0


def test_an_erased_person_is_gone_from_every_store_and_comes_back_new(
    broker: str, backend: str, tmp_path: Path
) -> None:
    prefix = f"er{uuid.uuid4().hex[:8]}"
    env = pipeline_env(broker, backend, tmp_path, prefix)
    env["COMMIT_INTERVAL_SECONDS"] = "0.2"
    # On the server, no local copy: the restart below rebuilds state from the changelog
    # alone, tombstone included; on chDB from the local RocksDB copy.
    local_copy = is_chdb(backend)
    env["TABLE_STORE"] = "rocksdb://" if local_copy else "memory://"
    running = start_pipeline(env, tmp_path)
    settings = running.settings
    topics = topics_of(settings)
    try:
        wait_worker_assigned(running)
        now = datetime.now(tz=UTC)
        with EventProducer(settings.kafka_bootstrap, topics=topics) as producer:
            for event in history(ERASED, now) + history(KEPT, now):
                producer.send(event)
        wait_until(lambda: len(about(feed(running), ERASED)) >= 2, 30, "the person's triggers")
        first_order = next(t for t in about(feed(running), ERASED) if t["rule"] == "first_order")
        with EventProducer(settings.kafka_bootstrap, topics=topics) as producer:
            producer.send(TouchEvent(event_id=f"{ERASED}-t", type="touch_opened",
                                     user_id=ERASED, ts=now - timedelta(seconds=30),
                                     campaign_id="c1", channel="wecom",
                                     trigger_id=first_order["id"]))  # fmt: skip
        sent = 2 * 4 + 1
        # Everything durable (rows in ClickHouse, state in the changelog) before the erasure.
        wait_until(lambda: worker_metric(running, "lifecycle_events_committed_total") >= sent,
                   30, "the events to be committed")  # fmt: skip
        kept_before = running.get(f"/v1/users/{KEPT}").json()
        total_before = running.get("/v1/segments").json()["total_users"]

        # A read key may not erase; an id the pipeline would refuse is a 422.
        refused = httpx.delete(f"{running.base_url}/v1/users/{ERASED}",
                               headers={"X-API-Key": "test-key"}, timeout=5)  # fmt: skip
        assert refused.status_code == 403
        bad = httpx.delete(f"{running.base_url}/v1/users/bad%20id", headers=ADMIN, timeout=5)
        assert bad.status_code == 422
        assert running.get("/v1/erasures/nope").status_code == 404

        answer = httpx.delete(f"{running.base_url}/v1/users/{ERASED}", headers=ADMIN, timeout=5)
        assert answer.status_code == 202, answer.text
        erasure = answer.json()
        assert erasure["status"] == "requested"
        assert erasure["user_id"] == ERASED
        location = answer.headers["Location"]
        assert location == f"/v1/erasures/{erasure['erasure_id']}"
        done = wait_until(lambda: (r := running.get(location).json())["status"] == "complete"
                          and r, 30, "the erasure to complete")  # fmt: skip
        assert done["user_id"] is None  # the completed record no longer names the person
        assert done["state_found"] is True
        # Every table had rows of the person, and they were deleted.
        assert set(done["rows_deleted"]) == set(PERSON_COLUMNS)
        assert all(count > 0 for count in done["rows_deleted"].values()), done["rows_deleted"]
        assert done["rows_deleted"]["events"] == 5

        # The API's view, lists, counts and trigger feed.
        assert running.get(f"/v1/users/{ERASED}").status_code == 404
        listed = running.get("/v1/users?limit=1000").json()["items"]
        assert ERASED not in {item["user_id"] for item in listed}
        assert running.get("/v1/segments").json()["total_users"] == total_before - 1
        assert about(feed(running), ERASED) == []
        assert running.get(f"/v1/users/{KEPT}").json() == kept_before
        assert len(about(feed(running), KEPT)) >= 2

        # A record of the person written before the request and read only now (a backlog, a
        # replay) is dropped, not a new person.
        requested_ms = int(datetime.fromisoformat(done["requested_at"]).timestamp() * 1000)
        stale = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        late = LiveEvent(event_id=f"{ERASED}-late", type="like", user_id=ERASED,
                         ts=now - timedelta(minutes=1), room_id="r1", session_id="s1")  # fmt: skip
        stale.send(settings.topic_live, value=late.model_dump_json().encode(),
                   key=ERASED.encode(), timestamp_ms=requested_ms - 1000)  # fmt: skip
        stale.flush()
        stale.close()
        wait_until(lambda: worker_metric(running, "lifecycle_erased_events_total") == 1, 30,
                   "the stale event to be dropped")  # fmt: skip
        assert running.get(f"/v1/users/{ERASED}").status_code == 404

        # An event sent afterwards starts a new person; the same event id is no duplicate
        # (the old person's ids went with them).
        with EventProducer(settings.kafka_bootstrap, topics=topics) as producer:
            producer.send(new_order())
        document = wait_until(
            lambda: (r := running.get(f"/v1/users/{ERASED}")).status_code == 200 and r.json(),
            30, "the new person's document",
        )  # fmt: skip
        assert_new_person(document)
        new_triggers = wait_until(lambda: about(feed(running), ERASED), 30, "a new first_order")
        assert [t["rule"] for t in new_triggers] == ["first_order"]
        # The stores below are looked at once everything is durable.
        wait_until(lambda: worker_metric(running, "lifecycle_events_committed_total") >= sent + 2,
                   30, "the last events' offsets to be committed")  # fmt: skip
    finally:
        stop(running)

    # Every store, with the pipeline stopped: of the person, only the new one is left.
    with store(backend) as client:
        for table, (column, _) in PERSON_COLUMNS.items():
            kept = client.query(f"SELECT count() AS n FROM {table} WHERE {column} = '{KEPT}'")
            if table != "trigger_outcomes":
                assert int(kept[0]["n"]) > 0, table
        mine = f"user_id = '{ERASED}'"
        events = client.query(f"SELECT event_id FROM events WHERE {mine}")
        assert [row["event_id"] for row in events] == [f"{ERASED}-o1"]
        scores = client.query(f"SELECT DISTINCT order_count FROM user_scores WHERE {mine}")
        assert [int(row["order_count"]) for row in scores] == [1]
        rules = client.query(f"SELECT rule FROM triggers WHERE subject_id = '{ERASED}'")
        assert [row["rule"] for row in rules] == ["first_order"]
        outcomes = client.query(f"SELECT count() AS n FROM trigger_outcomes WHERE {mine}")
        assert int(outcomes[0]["n"]) == 0
        stages = client.query(f"SELECT to_stage FROM stage_transitions WHERE {mine}")
        assert [row["to_stage"] for row in stages] == ["new"]
    for topic in (settings.changelog_topic, settings.topic_scores):
        records = last_by_key(read_all(settings.kafka_bootstrap, topic), ERASED)
        tombstones = [n for n, record in enumerate(records) if record.value is None]
        assert tombstones, topic  # the old person's records end in a tombstone
        assert records[-1].value is not None  # then the new person's
        after = [orjson.loads(r.value) for r in records[tombstones[-1] + 1 :]]
        assert all(value["order_count"] == 1 for value in after), topic
    if local_copy:
        local = local_users(tmp_path / "data" / "worker" / "state")
        assert local[ERASED]["order_count"] == 1
        assert local[KEPT]["order_count"] == 2
        return

    # Restarted from the changelog alone: the new person, not the old one.
    running = start_pipeline(env, tmp_path)
    try:
        wait_worker_assigned(running)
        assert_new_person(running.get(f"/v1/users/{ERASED}").json())
        triggers = about(feed(running), ERASED)  # reloaded from the topic, still filtered
        assert [t["rule"] for t in triggers] == ["first_order"]
        assert running.get(f"/v1/users/{KEPT}").json()["order_count"] == 2
    finally:
        stop(running)


def new_order() -> OrderEvent:
    """The new person's first order: the old person's first order's event id, stamped now."""
    return OrderEvent(event_id=f"{ERASED}-o1", type="order_paid", user_id=ERASED,
                      ts=datetime.now(tz=UTC), order_id="o1", amount="30.00", currency="CNY",
                      channel="live")  # fmt: skip


def assert_new_person(document: dict[str, Any]) -> None:
    assert document["order_count"] == 1
    assert document["monetary"] == 30.0
    assert document["stage"] == "new"


def local_users(state_dir: Path) -> dict[str, dict[str, Any]]:
    """Users in the worker's local copies (RocksDB), by id."""
    users: dict[str, dict[str, Any]] = {}
    for path in sorted(state_dir.glob("partition-*")):
        options = Options(raw_mode=True)
        db = Rdict(str(path), options=options)
        try:
            for key, value in db.items():
                if not key.startswith(b"\x00"):
                    user, _ = decode_user(bytes(value))
                    users[key.decode()] = orjson.loads(orjson.dumps(user.to_dict()))
        finally:
            db.close()
    return users
