"""Replays after a crash change nothing, and rows added while a flush runs are not lost."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import orjson

from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.store import encode_user
from sinks.base import BatchingSink, ClickHouseClient, Row

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def paid(event_id: str, amount: str = "10") -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "type": "order_paid",
            "user_id": "u1",
            "ts": "2026-05-30T10:00:00+08:00",
            "order_id": f"o-{event_id}",
            "amount": amount,
            "currency": "CNY",
        }
    )


def stored(scorer: Scorer) -> bytes:
    user = scorer.store.get("u1")
    assert user is not None
    return encode_user(user, 2)


def test_a_replay_changes_nothing_and_writes_its_row_again() -> None:
    scorer = Scorer(Settings(clickhouse_url="memory://"))
    first = scorer.score("order-events", paid("a"), now=NOW, partition=2)
    assert first.document is not None
    assert first.document.order_count == 1
    before = stored(scorer)
    replay = scorer.score("order-events", paid("a"), now=NOW, partition=2)
    assert replay.duplicate
    assert replay.document is None
    assert [table for table, _ in replay.rows] == ["events"]  # the row is written again
    assert stored(scorer) == before
    assert scorer.score("order-events", paid("b"), now=NOW, partition=2).document
    assert orjson.loads(stored(scorer))["order_count"] == 2


class SlowClient(ClickHouseClient):
    """Inserts block until released, so rows can be added during a flush."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def ensure_schema(self, retention_days: int | None = None) -> None:
        pass

    def insert(self, table: str, rows: list[Row]) -> None:
        self.entered.set()
        assert self.release.wait(10)
        self.rows.extend(rows)

    def query(self, sql: str) -> list[Row]:
        return list(self.rows)

    def close(self) -> None:
        pass


def test_rows_added_during_a_flush_wait_for_the_next() -> None:
    client = SlowClient()
    sink = BatchingSink(client)
    for i in range(3):
        sink.add("events", {"n": i})
    flusher = threading.Thread(target=sink.flush)
    flusher.start()
    assert client.entered.wait(10)
    sink.add("events", {"n": 3})
    client.release.set()
    flusher.join(10)
    assert [row["n"] for row in client.rows] == [0, 1, 2]
    assert sink.pending == 1
    sink.flush()
    assert [row["n"] for row in client.rows] == [0, 1, 2, 3]
    assert sink.pending == 0
