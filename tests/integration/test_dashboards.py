"""Every panel of the shipped Grafana dashboards runs against both real stores (chDB and the
ClickHouse server) on rows the scorer wrote, and answers what the rows say."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.domain.rooms import RoomWindow
from pipeline.domain.triggers import load_rules
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.user_triggers import trigger_row
from sinks.base import ClickHouseClient
from sinks.factory import open_client

pytestmark = pytest.mark.integration

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
T0 = 1_760_000_000_000  # 2025-10-09
DAY_MS = 86_400_000
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def panels() -> list[tuple[str, str]]:
    out = []
    for path in [DASHBOARDS / "triggers.json"]:  # the generated ones: test_kpis
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                out.append((f"{path.stem}: {panel['title']}", target["rawSql"]))
    return out


def expand(sql: str, start: datetime, end: datetime) -> str:
    """Grafana's time macro, as the ClickHouse data source expands it."""
    f, t = (d.strftime("%Y-%m-%d %H:%M:%S") for d in (start, end))
    return re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m[1]} >= toDateTime('{f}', 'UTC') AND {m[1]} <= toDateTime('{t}', 'UTC')",
        sql,
    )


def scripted_rows() -> dict[str, list[dict[str, Any]]]:
    """Rows of a short script through the real scorer and room window."""
    scorer = Scorer(Settings(clickhouse_url="memory://", trigger_max_age_seconds=10 * 365 * 86_400))
    rows: dict[str, list[dict[str, Any]]] = {}
    n = 0

    def send(topic: str, user: str, type_: str, at_ms: int, **fields: Any) -> Any:
        nonlocal n
        n += 1
        data = {"event_id": f"e{n}", "type": type_, "user_id": user, "ts": at_ms, **fields}
        outcome = scorer.score(topic, orjson.dumps(data), now=NOW)
        for table, row in outcome.rows:
            rows.setdefault(table, []).append(row)
        return outcome

    def order(user: str, at_ms: int, order_id: str) -> Any:
        return send("order-events", user, "order_paid", at_ms, order_id=order_id,
                    amount="50.00", currency="CNY", channel="live")  # fmt: skip

    first = order("u1", T0, "o1").fired[0][0]
    order("u2", T0, "o2")  # fires first_order too, with no touches after it
    for kind in ("touch_sent", "touch_opened", "touch_clicked"):
        send("touch-events", "u1", kind, T0 + 1000, campaign_id="c", channel="wecom",
             trigger_id=first.id)  # fmt: skip
    order("u1", T0 + DAY_MS, "o3")  # inside first_order's window; fires repeat_buyer
    room = RoomWindow("room-1")
    for i in range(20):
        _, fired = room.add(f"c{i}", T0 + i * 1000, i < 8, load_rules().room_rules, 60_000)
        rows.setdefault("triggers", []).extend(trigger_row(f, NOW) for f in fired)
    # A crash makes the worker write some rows twice; the panels count them once.
    rows["triggers"] += rows["triggers"][:1]
    rows["trigger_outcomes"] += rows["trigger_outcomes"][:2]
    return rows


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Any:
    client = open_client(Settings(clickhouse_url=backend, data_dir=tmp_path))
    client.ensure_schema()
    for table, batch in scripted_rows().items():
        client.insert(table, batch)
    yield client
    client.close()


def run(store: ClickHouseClient, title: str) -> list[dict[str, Any]]:
    sql = next(sql for name, sql in panels() if name.endswith(title))
    start, end = datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 11, 1, tzinfo=UTC)
    return store.query(expand(sql, start, end))


def test_every_panel_runs(store: ClickHouseClient) -> None:
    assert panels(), "no dashboard panels found"
    for name, sql in panels():
        start, end = datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 11, 1, tzinfo=UTC)
        assert store.query(expand(sql, start, end)), f"{name} returned no rows"


def test_triggers_per_rule(store: ClickHouseClient) -> None:
    rows = run(store, "Triggers fired per rule")
    fired: dict[str, int] = {}
    for row in rows:
        fired[row["rule"]] = fired.get(row["rule"], 0) + int(row["fired"])
    assert fired == {"first_order": 2, "repeat_buyer": 1, "room_negative_sentiment": 1}


def test_outcomes_by_rule(store: ClickHouseClient) -> None:
    rows = {row["rule"]: row for row in run(store, "Did the triggers work? Outcomes by rule")}
    assert set(rows) == {"first_order", "repeat_buyer"}
    first = rows["first_order"]
    counts = [int(first[k]) for k in ("fired", "sent", "opened", "clicked", "orders")]
    assert counts == [2, 1, 1, 1, 1]
    assert float(first["revenue"]) == 50.0
    assert float(first["open_rate"]) == 1.0
    assert float(first["orders_per_trigger"]) == 0.5
    assert int(rows["repeat_buyer"]["sent"]) == 0


def test_room_alerts(store: ClickHouseClient) -> None:
    rows = run(store, "Live-room alerts")
    assert [(r["room_id"], r["rule"]) for r in rows] == [("room-1", "room_negative_sentiment")]
    reason = orjson.loads(rows[0]["reason"])
    assert reason == {"comments": 20, "negative": 8, "negative_share": 0.4}
