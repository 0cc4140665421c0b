"""An order_paid event goes through the real broker, worker and API, and lands in ClickHouse."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.demo import topics_of
from pipeline.settings import Settings
from schemas.client import EventProducer
from schemas.order import OrderEvent
from sinks.chdb import ChdbClient
from sinks.clickhouse_server import ServerClient
from tests.integration.conftest import pipeline_env, start_pipeline, wait_worker_assigned
from tests.integration.parts import wait_until

pytestmark = pytest.mark.integration


def _rows(settings: Settings, sql: str) -> list[dict[str, object]]:
    client = ServerClient(settings.clickhouse_url)
    try:
        return client.query(sql)
    finally:
        client.close()


def test_order_paid_is_served_within_two_seconds_and_stored(
    broker: str, backend: str, tmp_path: Path
) -> None:
    prefix = f"vs{uuid.uuid4().hex[:8]}"
    running = start_pipeline(pipeline_env(broker, backend, tmp_path, prefix), tmp_path)
    try:
        wait_worker_assigned(running)
        ts = datetime(2026, 11, 20, 12, 30, 15, 250000, tzinfo=UTC)
        event = OrderEvent(
            event_id=f"{prefix}-e1",
            type="order_paid",
            user_id=f"{prefix}-alice",
            ts=ts,
            order_id="o-1",
            amount=Decimal("129.90"),
            currency="CNY",
            channel="live",
            room_id="room-1",
        )
        with EventProducer(broker, topics=topics_of(running.settings)) as producer:
            producer.send(event)
            producer.flush()
            sent_at = time.monotonic()

        def served() -> dict[str, object] | None:
            response = running.get(f"/v1/users/{event.user_id}")
            return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

        document = wait_until(served, 2.0, "the score document in the API")
        assert time.monotonic() - sent_at < 2.0
        assert document["stage"] == "new"
        assert document["order_count"] == 1
        assert document["monetary"] == pytest.approx(129.90)
        assert document["last_event_at"].startswith("2026-11-20T12:30:15.25")

        if backend.startswith("clickhouse://"):
            database = running.settings.clickhouse_url.rsplit("/", 1)[1]
            sql = f"SELECT * FROM {database}.events WHERE event_id = '{event.event_id}'"
            rows = wait_until(
                lambda: _rows(running.settings, sql),
                10,
                "the event row in the ClickHouse server",
            )
        else:
            assert running.worker.stop() == 0, running.worker.tail()
            client = ChdbClient(running.settings.chdb_path())
            try:
                rows = client.query(f"SELECT * FROM events WHERE event_id = '{event.event_id}'")
                scores = client.query(
                    f"SELECT * FROM user_scores WHERE user_id = '{event.user_id}'"
                )
            finally:
                client.close()
            assert len(scores) == 1
            assert scores[0]["stage"] == "new"
        assert len(rows) == 1
        row = rows[0]
        assert row["user_id"] == event.user_id
        assert row["type"] == "order_paid"
        assert float(str(row["amount"])) == pytest.approx(129.90)
        assert row["ts_ms"] == event.ts_ms
        assert row["room_id"] == "room-1"
    finally:
        running.api.stop()
        running.worker.stop()
