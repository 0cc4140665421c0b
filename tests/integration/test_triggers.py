"""Triggers on the running pipeline: real broker, ClickHouse server, worker and API.

Scripted events fire each user rule once, the room rule sees one room's comments from users on
every partition, a cooldown holds across a worker killed with SIGKILL, the feed pages and
streams (server-sent events) with cursors that resume exactly, and touches that answer a
trigger come back as its outcomes in ClickHouse."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from api.triggers_view import decode_cursor
from pipeline.domain.triggers import DEFAULT_RULES_FILE
from schemas.client import EventProducer
from sinks.factory import open_client
from tests.integration.conftest import (
    Running,
    pipeline_env,
    start_pipeline,
    wait_worker_assigned,
    worker_metric,
)
from tests.integration.parts import Proc, lifecycle, wait_until

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
T = (datetime.now(tz=UTC) - timedelta(days=200)).replace(microsecond=0)
STATE_RULES = {"became_silent", "became_churned", "first_order", "repeat_buyer", "long_watch"}
COOLDOWN_DAYS = 60  # became_silent's cooldown in this run's rules file


@pytest.fixture(scope="module")
def running(
    broker: str, clickhouse_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("triggers")
    prefix = f"tr{uuid.uuid4().hex[:8]}"
    # An operator's edit of the shipped rules: a longer cooldown for became_silent.
    rules = tmp / "rules.yaml"
    text = DEFAULT_RULES_FILE.read_text()
    marker = "    when: {stage: {eq: silent}}\n    cooldown: 30d"
    assert marker in text
    rules.write_text(text.replace(marker, marker.replace("30d", f"{COOLDOWN_DAYS}d")))
    env = pipeline_env(broker, f"clickhouse://127.0.0.1:{clickhouse_port}/{prefix}", tmp, prefix)
    env.update(TRIGGERS_FILE=str(rules), MODEL_REFIT_SECONDS="3600", TABLE_STORE="rocksdb://")
    # The rules are exercised on weeks of history: every fact of it counts as present here.
    env.update(TRIGGER_MAX_AGE_SECONDS=str(10 * 365 * 86_400))
    pipeline = start_pipeline(env, tmp)
    try:
        wait_worker_assigned(pipeline)
        yield pipeline
    finally:
        pipeline.api.stop()
        pipeline.worker.stop()


class Events:
    """Sends scripted events with unique ids; `resend` sends one again, byte for byte."""

    def __init__(self, running: Running) -> None:
        self.settings = running.settings
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, kind: str, user: str, type_: str, at: datetime, **fields: Any) -> None:
        topic = {"live": self.settings.topic_live, "order": self.settings.topic_order,
                 "touch": self.settings.topic_touch}[kind]  # fmt: skip
        data = {"event_id": uuid.uuid4().hex, "type": type_, "user_id": user,
                "ts": at.isoformat(), **fields}  # fmt: skip
        self.sent.append((topic, user.encode(), orjson.dumps(data)))

    def live(self, user: str, type_: str, at: datetime, **fields: Any) -> None:
        fields.setdefault("room_id", "room-0")
        fields.setdefault("session_id", "s1")
        self.send("live", user, type_, at, **fields)

    def order(self, user: str, at: datetime) -> None:
        self.send("order", user, "order_paid", at, order_id=uuid.uuid4().hex, amount="88.00",
                  currency="CNY", channel="live")  # fmt: skip

    def resend(self, index: int) -> None:
        self.sent.append(self.sent[index])

    def flush(self) -> None:
        with EventProducer(self.settings.kafka_bootstrap) as producer:
            for topic, key, value in self.sent:
                producer.send_raw(topic, value, key=key)
            producer.flush()
        self.sent.clear()


def feed(running: Running, rule: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Every trigger the API serves, page by page."""
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = f"/v1/triggers?limit={limit}&cursor={cursor}" + (f"&rule={rule}" if rule else "")
        response = running.get(query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if not page["items"]:
            return items
        cursor = page["cursor"]


def fired(running: Running, rule: str, subject: str) -> list[dict[str, Any]]:
    return [t for t in feed(running, rule) if t["subject_id"] == subject]


def feed_caught_up(running: Running) -> bool:
    """The API's feed has read the whole triggers topic as it is now."""
    settings = running.settings
    end = asyncio.run(_end_offsets(settings.kafka_bootstrap, settings.topic_triggers))
    cursor = decode_cursor(_last_cursor(running))
    return all(cursor.get(p, 0) >= o for p, o in end.items())


def _last_cursor(running: Running) -> str:
    cursor = ""
    while True:
        page = running.get(f"/v1/triggers?limit=1000&cursor={cursor}").json()
        if not page["items"]:
            return str(page["cursor"])
        cursor = page["cursor"]


async def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


def partition(running: Running, user: str) -> int:
    return (murmur2(user.encode()) & 0x7FFFFFFF) % running.settings.topic_partitions


def test_each_user_rule_fires_once_and_the_feed_pages_stably(running: Running) -> None:
    events = Events(running)
    events.order("buyer", T)
    events.order("buyer", T + DAY)
    events.resend(0)  # a producer's resend: a duplicate, fires nothing
    for at in (T, T + timedelta(hours=1), T + timedelta(hours=2)):
        events.live("watcher", "watch", at, seconds=3601)
    # Near miss: three hours, but the last one in another broadcast.
    events.live("switcher", "watch", T, seconds=3600)
    events.live("switcher", "watch", T + timedelta(hours=1), seconds=3600)
    events.live("switcher", "watch", T + timedelta(hours=2), seconds=3600, session_id="s2")
    events.flush()

    expected = [("first_order", "buyer"), ("long_watch", "watcher"), ("repeat_buyer", "buyer")]

    def state_triggers() -> list[tuple[str, str]] | None:
        got = sorted(
            (t["rule"], t["subject_id"])
            for t in feed(running)
            if t["rule"] in STATE_RULES and t["subject_id"] in {"buyer", "watcher", "switcher"}
        )
        return got if len(got) >= len(expected) else None

    assert wait_until(state_triggers, 30, "the user triggers in the feed", step=0.1) == expected
    everything = feed(running)
    one_by_one = feed(running, limit=1)
    assert [t["id"] for t in one_by_one] == [t["id"] for t in everything]
    first = fired(running, "first_order", "buyer")[0]
    assert first["reason"] == {"order_count": 1}
    assert first["action"] == "invite_to_community"
    assert first["at"].startswith(T.strftime("%Y-%m-%dT%H:%M:%S"))
    watch = fired(running, "long_watch", "watcher")[0]
    assert watch["reason"] == {"session_watch_seconds": 3 * 3601.0}

    client = open_client(running.settings)
    try:
        ids = {t["id"] for t in everything}

        def in_clickhouse() -> bool:
            rows = client.query("SELECT DISTINCT id FROM triggers")
            return ids <= {r["id"] for r in rows}

        wait_until(in_clickhouse, 30, "the triggers in ClickHouse", step=0.2)
    finally:
        client.close()


def test_bad_feed_parameters_get_a_clear_error(running: Running) -> None:
    assert running.get("/v1/triggers", key=None).status_code == 401
    unknown = running.get("/v1/triggers?rule=nope")
    assert unknown.status_code == 422
    assert "unknown rule 'nope'" in unknown.json()["detail"]
    bad = running.get("/v1/triggers?cursor=%21%21")
    assert bad.status_code == 422
    assert "cursor" in bad.json()["detail"]
    assert running.get("/v1/triggers?limit=0").status_code == 422


def test_the_room_rule_sees_one_rooms_comments_from_every_partition(running: Running) -> None:
    events = Events(running)
    viewers = [f"viewer-{i}" for i in range(20)]
    assert len({partition(running, v) for v in viewers}) > 1
    for i, viewer in enumerate(viewers):
        text = "太差了，质量很烂" if i % 5 < 2 else "what is the price?"
        events.live(viewer, "comment", T + timedelta(seconds=3 * i), room_id="room-7", text=text)
    events.flush()

    def counted(n: int) -> bool:
        assert running.worker.alive(), running.worker.tail()
        return worker_metric(running, 'lifecycle_room_comments_total{status="counted"}') >= n

    alerts = wait_until(
        lambda: fired(running, "room_negative_sentiment", "room-7"), 30, "the alert", step=0.1
    )
    alert = alerts[0]
    assert alert["subject_type"] == "room"
    assert alert["action"] == "switch_to_qa"
    assert alert["reason"] == {"comments": 20, "negative": 8, "negative_share": 0.4}
    assert counted(20)

    # More negative comments a minute later, inside the cooldown (ten minutes): no second.
    for i in range(10):
        events.live(f"late-{i}", "comment", T + timedelta(minutes=2, seconds=i),
                    room_id="room-7", text="terrible, awful host")  # fmt: skip
    events.flush()
    wait_until(lambda: counted(30), 30, "the room engine to count the comments", step=0.1)
    wait_until(lambda: feed_caught_up(running), 30, "the feed to catch up", step=0.1)
    assert [a["id"] for a in fired(running, "room_negative_sentiment", "room-7")] == [alert["id"]]


def test_the_cooldown_holds_across_a_worker_killed_and_restarted(running: Running) -> None:
    events = Events(running)
    quiet = "quiet-user"
    # Another user on the same partition moves that partition's event clock.
    clock = next(
        f"clock-{i}" for i in range(1000)
        if partition(running, f"clock-{i}") == partition(running, quiet)
    )  # fmt: skip
    events.live(quiet, "like", T)
    events.live(clock, "like", T + 31 * DAY)
    events.flush()
    first = wait_until(
        lambda: fired(running, "became_silent", quiet), 30, "the first became_silent", step=0.1
    )
    assert first[0]["at"].startswith((T + 30 * DAY).strftime("%Y-%m-%dT%H:%M:%S"))
    # Let a checkpoint take the firing mark into the changelog, then kill the worker.
    seen = worker_metric(running, "lifecycle_checkpoints_total")
    wait_until(
        lambda: worker_metric(running, "lifecycle_checkpoints_total") >= seen + 2,
        30, "two checkpoints",
    )  # fmt: skip
    assert running.worker.stop(signal.SIGKILL) == -signal.SIGKILL
    running.worker = Proc("worker", lifecycle("worker"), running.env, running.tmp / "w2.log")
    wait_worker_assigned(running)

    # The user comes back, then goes silent again 32 days after the first trigger: inside
    # the cooldown of this run's rules (60 days), so nothing fires.
    events.live(quiet, "like", T + 32 * DAY)
    events.live(clock, "like", T + 63 * DAY)
    events.flush()

    def silent_again() -> bool:
        response = running.get(f"/v1/users/{quiet}")
        if response.status_code != 200:
            return False
        document = response.json()
        since = (T + 62 * DAY).strftime("%Y-%m-%dT%H:%M:%S")
        return document["stage"] == "silent" and document["stage_since"].startswith(since)

    wait_until(silent_again, 60, "the user to be silent again", step=0.1)
    wait_until(lambda: feed_caught_up(running), 30, "the feed to catch up", step=0.1)
    assert [t["id"] for t in fired(running, "became_silent", quiet)] == [first[0]["id"]]


def test_the_live_stream_resumes_from_the_last_event_id(running: Running) -> None:
    Item = tuple[str, dict[str, Any]]

    def read(headers: dict[str, str], done: Any) -> list[Item]:
        """Stream events until `done(events so far)`; the server must not go quiet first."""
        out: list[Item] = []
        event_id = ""
        headers = {"X-API-Key": "test-key", **headers}
        url = running.base_url + "/v1/triggers/stream"
        with httpx.stream("GET", url, headers=headers, timeout=10) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    out.append((event_id, orjson.loads(line[6:])))
                    if done(out):
                        return out
        raise AssertionError("the stream ended")

    everything = feed(running)
    assert len(everything) >= 3
    streamed = read({}, lambda out: len(out) == len(everything))
    assert [t["id"] for _, t in streamed] == [t["id"] for t in everything]
    resumed = read({"Last-Event-ID": streamed[1][0]}, lambda out: len(out) == len(everything) - 2)
    assert [t["id"] for _, t in resumed] == [t["id"] for t in everything[2:]]

    # A trigger that fires while a client follows the stream reaches it.
    events = Events(running)
    events.order("late-buyer", T + 100 * DAY)
    events.flush()
    live = read(
        {"Last-Event-ID": streamed[-1][0]},
        lambda out: any(t["subject_id"] == "late-buyer" for _, t in out),
    )
    assert [t["id"] for _, t in live if t["id"] in {x["id"] for x in everything}] == []
    assert ("first_order", "late-buyer") in {(t["rule"], t["subject_id"]) for _, t in live}


def test_touches_answering_a_trigger_are_its_outcomes(running: Running, tmp_path: Path) -> None:
    trigger = fired(running, "first_order", "buyer")[0]
    events = Events(running)
    at = datetime.fromisoformat(trigger["at"]) + timedelta(hours=1)
    for kind in ("touch_sent", "touch_opened", "touch_clicked"):
        events.send("touch", "buyer", kind, at, campaign_id="welcome", channel="wecom",
                    trigger_id=trigger["id"])  # fmt: skip
    events.flush()
    client = open_client(running.settings)
    try:

        def outcomes() -> list[str] | None:
            rows = client.query(
                "SELECT outcome FROM trigger_outcomes FINAL "
                f"WHERE trigger_id = '{trigger['id']}' AND rule = 'first_order' ORDER BY outcome"
            )
            got = [r["outcome"] for r in rows]
            return got if len(got) >= 4 else None

        # The second paid order (a day after the first) counted as an order after it.
        assert wait_until(outcomes, 30, "the outcomes in ClickHouse", step=0.2) == [
            "clicked", "opened", "order", "sent"
        ]  # fmt: skip
    finally:
        client.close()
    opened = 'lifecycle_trigger_outcomes_total{outcome="opened",rule="first_order"}'
    assert worker_metric(running, opened) >= 1


@pytest.mark.parametrize("command", [("worker",), ("api",), ("rules", "check")])
def test_an_invalid_rules_file_stops_the_start_naming_the_rule(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(DEFAULT_RULES_FILE.read_text().replace("{gte: 10800}", "{gte: lots}"))
    env = dict(
        os.environ, TRIGGERS_FILE=str(rules), API_KEYS='["k"]', KAFKA_BOOTSTRAP="127.0.0.1:1"
    )
    done = subprocess.run(lifecycle(*command), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"{rules}: rule 'long_watch': field 'session_watch_seconds'" in done.stderr
    assert "gte" in done.stderr


def test_rules_check_lists_the_shipped_rules() -> None:
    done = subprocess.run(lifecycle("rules", "check"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "8 rules OK" in done.stdout
    assert "room_negative_sentiment" in done.stdout
