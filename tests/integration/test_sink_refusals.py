"""Rows a real store refuses never block the sink: the store's own errors are told from an
outage, the refused rows are found among good ones and set aside, and through the broker and
the worker they go to dead-letters while everything else is written and committed."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from clickhouse_driver import Client

from schemas.client import EventProducer
from sinks.base import BatchingSink, ClickHouseClient, Row
from sinks.chdb import ChdbClient
from sinks.clickhouse_server import ServerClient
from sinks.ddl import TABLES
from sinks.exceptions import SinkError
from tests.integration.conftest import (
    pipeline_env,
    start_pipeline,
    wait_worker_assigned,
    worker_metric,
)
from tests.integration.parts import read_all, wait_until

pytestmark = pytest.mark.integration


def is_chdb(url: str) -> bool:
    return url.startswith("chdb:")


def chdb_dir(url: str) -> Path:
    return Path(url[len("chdb://") :])


def database_of(url: str) -> str:
    return urlparse(url).path.lstrip("/")


@contextmanager
def store(url: str) -> Iterator[ClickHouseClient]:
    client: ClickHouseClient = ChdbClient(chdb_dir(url)) if is_chdb(url) else ServerClient(url)
    try:
        yield client
    finally:
        client.close()


def event_row(event_id: str, **fields: Any) -> Row:
    row: Row = {
        "event_id": event_id,
        "topic": "order-events",
        "type": "order_paid",
        "user_id": "u-1",
        "ts": datetime(2026, 11, 20, 12, 15, tzinfo=UTC),
        "ts_ms": 1_795_176_900_000,
        "received_at": datetime(2026, 11, 20, 12, 15, 1, tzinfo=UTC),
        "room_id": "",
        "session_id": "",
        "group_id": "",
        "order_id": "o-1",
        "amount": Decimal("129.90"),
        "currency": "CNY",
        "amount_base": Decimal("129.90"),
        "channel": "live",
        "campaign_id": "",
        "trigger_id": "",
        "text": "",
        "seconds": 0.0,
        "props": "",
    }
    row.update(fields)
    return row


# Rows both stores refuse: (event id, fields, the column the store names or None, what the
# store's error says, by store). Measured: chDB parses the JSON it is sent and answers with
# ClickHouse codes; clickhouse-driver encodes the values itself and refuses before the server
# sees them (code 53, or a Python error such as AttributeError for None in a String column).
REFUSED: list[tuple[str, dict[str, Any], str | None, dict[str, str]]] = [
    (
        "big-amount",
        {"amount": Decimal(10) ** 17},
        "amount",
        {"chdb": "Code: 69.", "server": "Column amount: argument out of range"},
    ),
    (
        "text-in-int",
        {"ts_ms": "yesterday"},
        "ts_ms",
        {"chdb": "Code: 27.", "server": "Column ts_ms: required argument is not an integer"},
    ),
    (
        "bad-utf8",
        {"text": "half a surrogate \udcff"},
        None,
        {"chdb": "surrogates not allowed", "server": "surrogates not allowed"},
    ),
]


def test_a_real_store_refuses_bad_rows_and_takes_the_others(backend: str) -> None:
    kind = "chdb" if is_chdb(backend) else "server"
    with store(backend) as client:
        client.ensure_schema()
        sink = BatchingSink(client)
        good = [event_row(f"good-{i}") for i in range(12)]
        bad = [event_row(event_id, **fields) for event_id, fields, _, _ in REFUSED]
        # The bad rows among the good ones: first, in the middle, last.
        rows = [bad[0], *good[:6], bad[1], *good[6:], bad[2]]
        sink.add_many([("events", row) for row in rows])
        sink.add("stage_transitions", {
            "user_id": "u-1", "from_stage": "", "to_stage": "new",
            "at": datetime(2026, 11, 20, tzinfo=UTC), "at_ms": 1_795_132_800_000,
            "reactivation": 0, "recorded_at": datetime(2026, 11, 20, tzinfo=UTC),
        })  # fmt: skip

        assert sink.flush() == {"events": len(good), "stage_transitions": 1}

        assert sink.pending == 0
        refused = sink.take_refused()
        assert [r.row["event_id"] for r in refused] == [r["event_id"] for r in bad]
        for item, (event_id, _, column, says) in zip(refused, REFUSED, strict=True):
            assert item.table == "events"
            assert says[kind] in item.error, (event_id, item.error)
            assert item.column == column, (event_id, item.error)
            assert item.summary
        table = "events" if kind == "chdb" else f"{database_of(backend)}.events"
        stored = client.query(f"SELECT event_id, amount FROM {table} ORDER BY event_id")
        assert sorted(r["event_id"] for r in stored) == sorted(r["event_id"] for r in good)
        assert {Decimal(str(r["amount"])) for r in stored} == {Decimal("129.90")}


def test_an_unknown_table_is_an_outage_not_a_refusal(backend: str) -> None:
    with store(backend) as client:
        client.ensure_schema()
        sink = BatchingSink(client)
        sink.add("events", event_row("e-1"))
        sink.add("no_such_table", {"a": 1})
        with pytest.raises(SinkError) as info:
            sink.flush()
        assert type(info.value) is SinkError  # not SinkRefused
        assert "60" in str(info.value)  # UNKNOWN_TABLE
        assert sink.pending == 1  # kept for the next flush
        assert sink.take_refused() == []
        assert sink.rows_written["events"] == 1


# -- through the broker and the worker -------------------------------------------------------

NOW_MS = int(time.time() * 1000)


def narrow_events_table(database: str | None) -> str:
    """The `events` table as the product defines it, but with amounts of at most 9 digits."""
    sql = TABLES["events"].format(db=f"{database}." if database else "")
    return re.sub(r"\b(amount|amount_base) Decimal\(\d+, *\d+\)", r"\1 Decimal(9, 2)", sql)


def create_narrow_table(url: str) -> None:
    """Before the worker starts (chDB: one process at a time)."""
    if is_chdb(url):
        client = ChdbClient(chdb_dir(url))
        try:
            client._session.query(narrow_events_table(None))
        finally:
            client.close()
        return
    parsed = urlparse(url)
    database = database_of(url)
    server = Client(parsed.hostname or "127.0.0.1", port=parsed.port or 9000)
    try:
        server.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        server.execute(narrow_events_table(database))
    finally:
        server.disconnect()


def stored_event_ids(url: str) -> set[str]:
    if is_chdb(url):
        with store(url) as client:
            rows = client.query("SELECT event_id FROM events")
    else:
        with store(url) as client:
            rows = client.query(f"SELECT event_id FROM {database_of(url)}.events")
    return {str(r["event_id"]) for r in rows}


def order(event_id: str, user_id: str, amount: str, minutes_ago: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "order_paid",
        "user_id": user_id,
        "ts": NOW_MS - minutes_ago * 60_000,
        "order_id": f"o-{event_id}",
        "amount": amount,
        "currency": "CNY",
        "channel": "live",
        "room_id": "room-1",
    }


def watch(event_id: str, user_id: str, minutes_ago: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "watch",
        "user_id": user_id,
        "ts": NOW_MS - minutes_ago * 60_000,
        "room_id": "room-1",
        "session_id": "s-1",
        "seconds": 120,
        "props": {"device": "ios"},
    }


def test_a_row_the_store_refuses_goes_to_dead_letters_and_the_pipeline_goes_on(
    broker: str, backend: str, tmp_path: Path
) -> None:
    prefix = f"sr{uuid.uuid4().hex[:8]}"
    create_narrow_table(backend)
    env = pipeline_env(broker, backend, tmp_path, prefix)
    env.update(MODEL_REFIT_SECONDS="3600")
    running = start_pipeline(env, tmp_path)
    settings = running.settings
    whale, minnow = f"{prefix}-whale", f"{prefix}-minnow"
    big = f"{prefix}-big-order"
    # Valid (below the schema's 10^12), but not in Decimal(9, 2).
    first = [
        (settings.topic_live, watch(f"{prefix}-w1", whale, 50)),
        (settings.topic_order, order(f"{prefix}-o1", minnow, "129.90", 45)),
        (settings.topic_order, order(big, whale, "50000000.00", 40)),
        (settings.topic_live, watch(f"{prefix}-w2", minnow, 35)),
        (settings.topic_order, order(f"{prefix}-o2", whale, "88.00", 30)),
    ]
    second = [
        (settings.topic_live, watch(f"{prefix}-w3", whale, 20)),
        (settings.topic_order, order(f"{prefix}-o3", minnow, "10.50", 10)),
    ]

    def send(events: list[tuple[str, dict[str, Any]]]) -> None:
        with EventProducer(settings.kafka_bootstrap) as producer:
            for topic, event in events:
                key = event["user_id"].encode()
                producer.send_raw(topic, json.dumps(event).encode(), key=key)
            producer.flush()

    def committed_at_least(count: int) -> bool:
        assert running.worker.alive(), running.worker.tail()
        return worker_metric(running, "lifecycle_events_committed_total") >= count

    try:
        wait_worker_assigned(running)
        send(first)
        wait_until(lambda: committed_at_least(len(first)), 60, "the first events committed")

        def rejected() -> dict[str, Any] | None:
            for record in read_all(settings.kafka_bootstrap, settings.topic_dead_letters):
                body: dict[str, Any] = json.loads(record.value)
                if body["reason"] == "sink_rejected" and body["row"]["event_id"] == big:
                    assert record.key == whale.encode()
                    return body
            return None

        body = wait_until(rejected, 30, "the refused row in dead-letters", step=0.2)
        assert body["table"] == "events"
        assert body["field"] in ("amount", "amount_base")
        assert body["detail"]
        assert body["topic"] == settings.topic_order
        event = body["event"]
        assert (event["event_id"], event["type"], event["user_id"]) == (big, "order_paid", whale)
        assert event["ts"] == NOW_MS - 40 * 60_000
        assert (event["amount"], event["currency"], event["order_id"]) == (
            "50000000.00", "CNY", f"o-{big}"
        )  # fmt: skip
        assert event["room_id"] == "room-1"
        assert worker_metric(running, 'lifecycle_sink_rejected_rows_total{table="events"}') == 1
        # The event was scored: it is not a dead letter of the input's books.
        assert worker_metric(running, "lifecycle_dead_letters_total") == 0

        # The pipeline goes on: later events are committed too, and the API serves the user
        # with the refused order counted (only its row is missing from ClickHouse).
        send(second)
        total = len(first) + len(second)
        wait_until(lambda: committed_at_least(total), 60, "every event committed")

        def whale_document() -> dict[str, Any] | None:
            response = running.get(f"/v1/users/{whale}")
            if response.status_code != 200:
                return None
            document: dict[str, Any] = response.json()
            return document if document["order_count"] == 2 else None

        document = wait_until(whale_document, 30, "the whale's document in the API")
        assert document["order_count"] == 2
        assert document["monetary"] == pytest.approx(50_000_088.00)
        assert running.get(f"/v1/users/{minnow}").status_code == 200

        expected = {e["event_id"] for _, e in first + second} - {big}
        if is_chdb(backend):
            assert running.worker.stop() == 0, running.worker.tail()
            assert stored_event_ids(backend) == expected
        else:
            wait_until(
                lambda: stored_event_ids(backend) == expected,
                30, "the other events' rows in ClickHouse",
            )  # fmt: skip
        log = running.worker.log.read_text(errors="replace")
        assert f"refused a row of events (event {big}, column" in log
        assert whale not in log  # a user id is logged at DEBUG only
    finally:
        running.api.stop()
        running.worker.stop()
