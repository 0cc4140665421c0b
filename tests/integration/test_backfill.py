"""`lifecycle backfill` against the real broker, and through a running worker and API."""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.demo import topics_of
from pipeline.settings import Settings
from pipeline.topics import ensure_topics
from schemas.client import EventProducer
from schemas.events import AnyEvent
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from schemas.touch import TouchEvent
from tests.integration.conftest import (
    Running,
    chdb_pipeline,
    pipeline_env,
    settings_of,
    worker_metric,
)
from tests.integration.parts import free_port, lifecycle, read_all, wait_until

pytestmark = pytest.mark.integration

BACKFILL = "lifecycle-backfill"
END = "lifecycle-backfill-end"
DAY_MS = 86_400_000
NOW_MS = int(time.time() * 1000)


def backfill(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lifecycle("backfill", *args), env=env, capture_output=True, text=True, timeout=120
    )


@dataclass
class Target:
    """Topics of their own on the shared broker, and the environment naming them."""

    env: dict[str, str]
    settings: Settings
    tmp: Path

    @property
    def topics(self) -> dict[str, str]:
        s = self.settings
        return {"live": s.topic_live, "chat": s.topic_chat, "order": s.topic_order,
                "touch": s.topic_touch}  # fmt: skip

    def records(self, topic: str, markers: int) -> list[Any]:
        """Every record of `topic` once its `markers` end markers are there."""

        def ended() -> list[Any] | None:
            records = read_all(self.settings.kafka_bootstrap, topic)
            ends = [r for r in records if _header(r, END) is not None]
            return records if len(ends) >= markers else None

        return wait_until(ended, 30, f"{markers} end markers on {topic}", step=0.1)


@pytest.fixture
def target(broker: str, tmp_path: Path) -> Target:
    prefix = f"bf{uuid.uuid4().hex[:8]}"
    env = pipeline_env(broker, "memory://", tmp_path, prefix)
    settings = settings_of(env)
    asyncio.run(ensure_topics(settings))
    return Target(env, settings, tmp_path)


def _headers(record: Any) -> list[tuple[str, bytes]]:
    return [(key, value) for key, value in record.headers or ()]


def _header(record: Any, name: str) -> bytes | None:
    return next((value for key, value in _headers(record) if key == name), None)


def _event(kind: str, n: int, user: str, ts: int | str) -> dict[str, Any]:
    common = {"event_id": f"{kind}-{n}", "user_id": user, "ts": ts}
    fields: dict[str, dict[str, Any]] = {
        "live": {"type": "like", "room_id": "r1", "session_id": "s1"},
        "chat": {"type": "message", "text": "有优惠吗"},
        "order": {"type": "order_paid", "order_id": f"o-{n}", "amount": "12.50",
                  "currency": "CNY", "channel": "live"},
        "touch": {"type": "touch_clicked", "campaign_id": "c1", "channel": "wecom"},
    }  # fmt: skip
    return {**common, **fields[kind]}


def test_a_file_of_mixed_kinds_lands_on_its_topics_in_event_time_order(target: Target) -> None:
    rng = random.Random(11)
    valid: list[tuple[int, dict[str, Any]]] = []  # (line, event)
    lines: list[bytes] = []
    untyped = {k: v for k, v in _event("chat", 902, "u1", NOW_MS).items() if k != "type"}
    bad = {
        5: b"{not json",
        12: orjson.dumps(_event("live", 900, "u1", NOW_MS) | {"type": "dance"}),
        20: orjson.dumps(_event("order", 901, "u1", NOW_MS) | {"amount": "-1"}),
        33: orjson.dumps(untyped),
    }
    for line in range(1, 81):
        if line in bad:
            lines.append(bad[line])
            continue
        kind = rng.choice(["live", "live", "chat", "order", "touch"])
        # Few distinct times, so that many events share one: they keep their file order.
        ts_ms = NOW_MS - DAY_MS + rng.randrange(8) * 60_000
        ts: int | str = ts_ms if line % 3 else _rfc3339(ts_ms)
        event = _event(kind, line, f"u{rng.randrange(6)}", ts)
        valid.append((line, event | {"ts_ms": ts_ms, "kind": kind}))
        lines.append(orjson.dumps(event))
    path = target.tmp / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    backfill_id = f"test-{uuid.uuid4().hex[:8]}"

    result = backfill(target.env, str(path), "--id", backfill_id)

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"backfilled {len(valid)} events, end markers on the 4 input topics (id {backfill_id})",
        "rejected 4: not_json x1 (line 5), unknown_type x1 (line 12: type), "
        "invalid_amount x1 (line 20: amount), missing_field x1 (line 33: type)",
    ]
    assert "line 12: unknown_type (type)" in result.stderr
    partitions = target.settings.topic_partitions
    for kind, topic in target.topics.items():
        records = target.records(topic, partitions)
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append(record)
        assert sorted(by_partition) == list(range(partitions))
        expected = [(line, e) for line, e in valid if e["kind"] == kind]
        seen: list[str] = []
        for partition, got in by_partition.items():
            *events, marker = sorted(got, key=lambda r: r.offset)
            # The end marker is the partition's last record: no key, empty value, its header.
            assert _headers(marker) == [(END, backfill_id.encode())], marker
            assert marker.key is None
            assert marker.value == b""
            ids = []
            for record in events:
                assert _headers(record) == [(BACKFILL, backfill_id.encode())], record
                value = orjson.loads(record.value)
                assert record.key == value["user_id"].encode()
                ids.append(value["event_id"])
            # Event-time order, and file order among equal times.
            order = sorted(
                (e["ts_ms"], line, e["event_id"]) for line, e in expected if e["event_id"] in ids
            )
            assert ids == [event_id for _, _, event_id in order], (topic, partition)
            seen.extend(ids)
        assert sorted(seen) == sorted(e["event_id"] for _, e in expected), topic


def _rfc3339(ts_ms: int) -> str:
    seconds, ms = divmod(ts_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}+00:00"


def test_a_csv_file_at_a_rate_with_a_new_id(target: Target) -> None:
    day = NOW_MS - 2 * DAY_MS
    path = target.tmp / "history.csv"
    path.write_text(
        "event_id,type,user_id,ts,room_id,session_id,order_id,amount,currency,campaign_id,channel\n"
        f"o1,order_paid,alice,{day + 3},,,o-1,19.90,CNY,,live\n"
        f"l1,like,alice,{day + 1},r1,s1,,,,,\n"
        f"t1,touch_opened,bob,{day + 2},,,,,,c1,wecom\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    result = backfill(target.env, str(path), "--rate", "20")
    assert result.returncode == 0, result.stderr
    first, rejected = result.stdout.splitlines()
    match = re.fullmatch(
        r"backfilled 3 events, end markers on the 4 input topics \(id ([0-9a-f]{32})\)", first
    )
    assert match, first
    assert rejected == "rejected 0"
    assert time.monotonic() - started >= 0.1  # three events at 20/s: two gaps of 50 ms
    header = [(BACKFILL, match.group(1).encode())]
    got = {}
    for topic in target.topics.values():
        for record in target.records(topic, target.settings.topic_partitions):
            if record.value:
                assert _headers(record) == header
                got[orjson.loads(record.value)["event_id"]] = topic
    assert got == {
        "o1": target.settings.topic_order,
        "l1": target.settings.topic_live,
        "t1": target.settings.topic_touch,
    }


def test_usage_and_connection_errors_exit_2(target: Target) -> None:
    path = target.tmp / "events.txt"
    path.write_bytes(orjson.dumps(_event("live", 1, "u1", NOW_MS)) + b"\n")
    no_format = backfill(target.env, str(path))
    assert no_format.returncode == 2
    assert "--format" in no_format.stderr
    bad_id = backfill(target.env, str(path), "--format", "jsonl", "--id", "not an id")
    assert bad_id.returncode == 2
    assert "backfill id" in bad_id.stderr
    assert backfill(target.env, str(target.tmp / "absent.jsonl")).returncode == 2
    assert backfill(target.env, str(path), "--format", "jsonl", "--rate", "0").returncode == 2

    nobody = target.env | {"KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    unreachable = backfill(nobody, str(path), "--format", "jsonl")
    assert unreachable.returncode == 2, unreachable.stderr
    assert "cannot reach Kafka at 127.0.0.1:" in unreachable.stderr

    missing = target.env | {"TOPIC_TOUCH": f"absent-{uuid.uuid4().hex[:8]}"}
    no_topic = backfill(missing, str(path), "--format", "jsonl")
    assert no_topic.returncode == 2, no_topic.stderr
    assert "does not exist" in no_topic.stderr
    assert "lifecycle topics" in no_topic.stderr


def test_the_sdk_marks_a_backfill_and_ends_it(target: Target) -> None:
    settings = target.settings
    backfill_id = f"sdk-{uuid.uuid4().hex[:8]}"
    ts = NOW_MS - DAY_MS
    history: list[AnyEvent] = [
        LiveEvent.model_validate(_event("live", 1, "ann", ts)),
        OrderEvent.model_validate(_event("order", 2, "ann", ts + 1)),
    ]
    with EventProducer(
        settings.kafka_bootstrap, topics=topics_of(settings), backfill_id=backfill_id
    ) as producer:
        producer.send_all(history)
        assert producer.end_backfill() == 4 * settings.topic_partitions
    with EventProducer(settings.kafka_bootstrap, topics=topics_of(settings)) as live:
        live.send(TouchEvent.model_validate(_event("touch", 3, "ann", NOW_MS)))
    marked = [(BACKFILL, backfill_id.encode())]
    ended = [(END, backfill_id.encode())]
    for topic in (settings.topic_live, settings.topic_order, settings.topic_chat):
        records = target.records(topic, settings.topic_partitions)
        assert sorted(r.partition for r in records if _headers(r) == ended) == [0, 1, 2, 3]
        events = [r for r in records if _headers(r) != ended]
        assert len(events) == (0 if topic == settings.topic_chat else 1)
        assert all(_headers(r) == marked for r in events)
    touch = wait_until(
        lambda: [r for r in read_all(settings.kafka_bootstrap, settings.topic_touch) if r.value],
        30,
        "the live touch",
    )
    assert [_headers(r) for r in touch] == [[]]  # a producer not backfilling marks nothing


# -- through the worker and the API --------------------------------------------------------


def _story(user: str, start_ms: int) -> list[dict[str, Any]]:
    """Three likes, two messages, two paid orders, a touch opened and one clicked."""
    kinds = ["live", "chat", "live", "order", "touch", "live", "chat", "order", "touch"]
    events = []
    for n, kind in enumerate(kinds):
        event = _event(kind, n, user, start_ms + n * 3_600_000)
        event["event_id"] = f"{user}-{n}"
        if kind == "order":
            event["order_id"] = f"{user}-o{n}"
        if kind == "touch" and n == 4:
            event["type"] = "touch_opened"
        events.append(event)
    return events


def test_a_backfill_while_live_traffic_flows_scores_every_event_once(
    broker: str, tmp_path: Path
) -> None:
    prefix = f"bw{uuid.uuid4().hex[:8]}"
    with chdb_pipeline(broker, tmp_path, prefix) as running:
        settings = running.settings
        users = [f"{prefix}-u{n}" for n in range(5)]
        history = [e for n, u in enumerate(users) for e in _story(u, NOW_MS - (5 + n) * DAY_MS)]
        random.Random(3).shuffle(history)  # the file is in no order; the backfill sorts it
        lines = [orjson.dumps(e) for e in history]
        lines[4:4] = [b"{broken", orjson.dumps(_event("order", 99, users[0], "yesterday"))]
        path = tmp_path / "history.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")

        live_user = f"{prefix}-live"
        live = [
            LiveEvent.model_validate(_event("live", n, live_user, NOW_MS - 60_000 + n))
            for n in range(6)
        ]
        with EventProducer(settings.kafka_bootstrap, topics=topics_of(settings)) as producer:
            producer.send_all(live[:3])
            producer.flush()
            result = backfill(running.env, str(path), "--id", "bw")
            producer.send_all(live[3:])

        assert result.returncode == 1, result.stderr
        assert result.stdout.splitlines() == [
            f"backfilled {len(history)} events, end markers on the 4 input topics (id bw)",
            "rejected 2: not_json x1 (line 5), invalid_timestamp x1 (line 6: ts)",
        ]
        total = len(history) + len(live)
        wait_until(lambda: _scored(running) == total, 60, f"{total} events scored", step=0.2)
        for user in users:
            document = wait_until(partial(_document, running, user, 9), 30, f"{user}'s document")
            assert document["order_count"] == 2
            assert document["monetary"] == pytest.approx(25.0)
            assert document["interactions"] == 8  # the touch opened is not an interaction
        assert (
            wait_until(partial(_document, running, live_user, 6), 30, "the live user's document")[
                "interactions"
            ]
            == 6
        )
        # The end markers are not events: not counted in, not dead letters; the books balance.
        wait_until(lambda: _balanced(running), 10, "in == scored + duplicates + dead letters")
        assert worker_metric(running, "lifecycle_events_in_total") == total
        assert worker_metric(running, "lifecycle_dead_letters_total") == 0
        assert read_all(settings.kafka_bootstrap, settings.topic_dead_letters) == []


def _balanced(running: Running) -> bool:
    """In = scored + duplicates + dead letters (as in test_dead_letters)."""
    accounted = sum(
        worker_metric(running, name)
        for name in (
            "lifecycle_events_scored_total",
            "lifecycle_duplicates_total",
            "lifecycle_dead_letters_total",
        )
    )
    return worker_metric(running, "lifecycle_events_in_total") == accounted


def _scored(running: Running) -> float:
    assert running.worker.alive(), running.worker.tail()
    return worker_metric(running, "lifecycle_events_scored_total") + worker_metric(
        running, "lifecycle_duplicates_total"
    )


def _document(running: Running, user: str, version: int) -> dict[str, Any] | None:
    response = running.get(f"/v1/users/{user}")
    if response.status_code != 200:
        return None
    document: dict[str, Any] = response.json()
    return document if document["version"] >= version else None
