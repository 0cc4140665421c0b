"""Every KPI against values worked out by hand from a small scripted shop, on both real stores
(chDB and the ClickHouse server); the rows are the real scorer's."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.dashboards import DASHBOARDS, render
from pipeline.kpis import Period, compute
from pipeline.kpis_rooms import rooms
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from sinks.base import ClickHouseClient
from sinks.factory import open_client

pytestmark = pytest.mark.integration

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"

NOW = datetime(2027, 2, 16, tzinfo=UTC)
START, END = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
NOVEMBER = Period.of(START, END)
TARGETS = Settings().kpi_targets


def at(day: str, time: str = "12:00") -> str:
    return f"2026-{day}T{time}:00Z" if not day.startswith("2027") else f"{day}T{time}:00Z"


def script() -> list[tuple[str, dict[str, Any]]]:
    """(topic, event): users a and b first seen in November, c in October, d only messaged,
    e seen once in February (the data's last day)."""
    live = {"room_id": "r1"}
    paid = {"type": "order_paid", "currency": "CNY"}
    return [
        # a: room r1 broadcast s1 (like, private join, watch; a paid order inside it), then
        # messages on days 1 and 7, a second order 18 days after the first.
        ("live-events", {"user_id": "a", "type": "like", "ts": at("11-02", "10:00"),
                         "session_id": "s1", **live}),
        ("live-events", {"user_id": "a", "type": "private_join", "ts": at("11-02", "10:20"),
                         "session_id": "s1", **live}),
        ("order-events", {"user_id": "a", "order_id": "o1", "amount": "100.00",
                          "channel": "live", "ts": at("11-02", "10:30"), **paid, **live}),
        ("live-events", {"user_id": "a", "type": "watch", "seconds": 600,
                         "ts": at("11-02", "10:40"), "session_id": "s1", **live}),
        ("chat-events", {"user_id": "a", "type": "message", "text": "hi",
                         "ts": at("11-03")}),
        ("chat-events", {"user_id": "a", "type": "message", "text": "hello again",
                         "ts": at("11-09")}),
        ("order-events", {"user_id": "a", "order_id": "o2", "amount": "50.00",
                          "channel": "mini_program", "ts": at("11-20", "10:30"), **paid}),
        # b: broadcast s2 (a negative comment, a follow, a paid order inside it), a message on
        # day 7, a refund of 100 of the 300.
        ("live-events", {"user_id": "b", "type": "comment", "text": "质量太差了，要退货",
                         "ts": at("11-05", "20:00"), "session_id": "s2", **live}),
        ("order-events", {"user_id": "b", "order_id": "o1", "amount": "300.00",
                          "channel": "live", "ts": at("11-05", "20:03"), **paid, **live}),
        ("live-events", {"user_id": "b", "type": "follow", "ts": at("11-05", "20:05"),
                         "session_id": "s2", **live}),
        ("chat-events", {"user_id": "b", "type": "message", "text": "ok",
                         "ts": at("11-12")}),
        ("order-events", {"user_id": "b", "order_id": "o1", "type": "order_refunded",
                          "amount": "100.00", "currency": "CNY", "channel": "live",
                          "ts": at("11-15")}),
        # c: first seen in October with an order; in November a touch sent and opened, a
        # second order 26 days after the first, a message on day 30.
        ("order-events", {"user_id": "c", "order_id": "o1", "amount": "20.00",
                          "channel": "store", "ts": at("10-15"), **paid}),
        ("touch-events", {"user_id": "c", "type": "touch_sent", "campaign_id": "k",
                          "channel": "wecom", "ts": at("11-10", "09:00")}),
        ("touch-events", {"user_id": "c", "type": "touch_opened", "campaign_id": "k",
                          "channel": "wecom", "ts": at("11-10", "09:30")}),
        ("order-events", {"user_id": "c", "order_id": "o2", "amount": "40.00",
                          "channel": "store", "ts": at("11-10"), **paid}),
        ("chat-events", {"user_id": "c", "type": "message", "text": "thanks",
                         "ts": at("11-14")}),
        # d: a touch sent, never opened, no interaction.
        ("touch-events", {"user_id": "d", "type": "touch_sent", "campaign_id": "k",
                          "channel": "wecom", "ts": at("11-11")}),
        # e: the data's last day.
        ("chat-events", {"user_id": "e", "type": "message", "text": "new here",
                         "ts": at("2027-02-15")}),
        # f: seen in September, silent after 30 days, back in November (a reactivation).
        ("chat-events", {"user_id": "f", "type": "message", "text": "hi",
                         "ts": at("09-01")}),
        ("chat-events", {"user_id": "f", "type": "message", "text": "back",
                         "ts": at("11-20")}),
    ]  # fmt: skip


def scripted_rows() -> dict[str, list[dict[str, Any]]]:
    """Every table's rows of the script, through the real scorer (score documents too)."""
    scorer = Scorer(Settings(clickhouse_url="memory://", trigger_max_age_seconds=1))
    rows: dict[str, list[dict[str, Any]]] = {}
    for n, (topic, event) in enumerate(script()):
        outcome = scorer.score(topic, orjson.dumps({"event_id": f"e{n}", **event}), now=NOW)
        for table, row in outcome.rows:
            rows.setdefault(table, []).append(row)
    users = [u for p in scorer.store.partitions() for u in scorer.store.users_of(p)]
    rows["user_scores"] = [row for _, row, _ in scorer.documents(users, NOW)]
    return rows


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[ClickHouseClient]:
    client = open_client(Settings(clickhouse_url=backend, data_dir=tmp_path))
    client.ensure_schema()
    for table, rows in scripted_rows().items():
        client.insert(table, rows)
    client.insert("events", scripted_rows()["events"][:5])  # twice after a crash: read once
    yield client
    client.close()


def values(kpis: dict[str, Any]) -> dict[str, Any]:
    return {name: kpi["value"] for name, kpi in kpis.items()}


def test_every_kpi_equals_the_value_worked_out_by_hand(store: ClickHouseClient) -> None:
    kpis = compute(store.query, NOVEMBER, TARGETS)
    got = values(kpis)
    expected = {
        "open_rate": 1 / 2,  # c opened, d did not
        "interaction_frequency": 15 / 4,  # a 7, b 5, c 2, f 1; per user per 30 days
        "conversion": 3 / 4,  # a, b, c paid; they and f interacted
        "retention_d1": 1 / 2,  # cohort a, b: a came back on day 1
        "retention_d7": 2 / 2,
        "retention_d30": 0 / 2,
        "repurchase": 1 / 2,  # first paid in November: a (again 18 days later), b (never)
        "repurchase_cycle_days": 22.0,  # gaps ending in November: a 18, c 26
        "gmv": 490.0,  # 100 + 50 + 300 + 40
        "refunds": 100.0,
        "orders": 4.0,
        "aov": 490 / 4,
        "arpu": 490 / 4,
        "arppu": 490 / 3,
        "top15_share": 300 / 490,  # the top 15% of three payers, rounded up: b
        "ltv": (150 + 200) / 2,  # a 150; b 300 - 100
    }
    assert got == pytest.approx(expected)
    assert kpis["open_rate"]["met"] is False  # target > 0.6
    assert kpis["interaction_frequency"]["met"] is True  # target > 3
    assert kpis["retention_d1"]["target"] == 0.25
    assert kpis["gmv"]["met"] is None  # no target


def test_kpis_of_a_cohort_are_its_users_only(store: ClickHouseClient) -> None:
    october = Period.of(START, END, cohort="2026-10")
    got = values(compute(store.query, october, TARGETS))
    assert got["open_rate"] == 1.0  # c's touch
    assert got["conversion"] == 1.0
    assert got["interaction_frequency"] == pytest.approx(2.0)
    assert got["gmv"] == 40.0
    assert (got["retention_d1"], got["retention_d7"], got["retention_d30"]) == (0.0, 0.0, 1.0)
    assert got["ltv"] == 60.0  # 20 + 40
    assert got["repurchase"] is None  # c's first order was in October


def test_live_room_kpis_per_room_and_per_broadcast(store: ClickHouseClient) -> None:
    (room,) = rooms(store.query, NOVEMBER)
    assert room["room_id"] == "r1"
    assert room["viewers"] == 2
    assert room["avg_watch_seconds"] == 300.0
    assert room["interaction_rate"] == 1.0  # a liked, b commented
    assert room["negative_comment_share"] == 1.0
    assert room["follow_conversion"] == 0.5
    assert room["private_join_conversion"] == 0.5
    assert room["gmv"] == 400.0
    s1, s2 = room["broadcasts"]
    assert (s1["session_id"], s1["viewers"], s1["avg_watch_seconds"]) == ("s1", 1, 600.0)
    assert (s1["private_join_conversion"], s1["gmv"], s1["comments"]) == (1.0, 100.0, 0)
    assert s1["negative_comment_share"] is None
    assert (s2["session_id"], s2["follow_conversion"], s2["gmv"]) == ("s2", 1.0, 300.0)
    assert s2["negative_comment_share"] == 1.0


def grafana(sql: str, start: datetime = START, end: datetime = END) -> str:
    """The ClickHouse data source's time macros, as it expands them."""

    def at(moment: datetime) -> str:
        return f"toDateTime(intDiv({int(moment.timestamp() * 1000)},1000))"

    return sql.replace("$__fromTime", at(start)).replace("$__toTime", at(end))


def test_the_dashboard_files_are_what_the_generator_writes() -> None:
    for name, build in DASHBOARDS.items():
        assert (DASHBOARD_DIR / name).read_text() == render(build), f"{name}: run make dashboards"
    # Every ClickHouse panel reads the data source the dashboard's variable picks (a server,
    # or the embedded store through the worker), none is pinned to one.
    for path in DASHBOARD_DIR.glob("*.json"):
        dashboard = json.loads(path.read_text())
        sources = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]
                   if t["datasource"]["type"] == "grafana-clickhouse-datasource"}  # fmt: skip
        if sources:
            assert sources == {"${datasource}"}, path.name
            (variable,) = dashboard["templating"]["list"]
            assert variable["type"] == "datasource", path.name


def test_every_generated_panel_runs_and_says_what_the_api_says(store: ClickHouseClient) -> None:
    kpis = compute(store.query, NOVEMBER, TARGETS)
    stats = 0
    for name in DASHBOARDS:
        for panel in json.loads((DASHBOARD_DIR / name).read_text())["panels"]:
            if "rawSql" not in panel["targets"][0]:
                continue  # Prometheus: test_pipeline_health
            rows = store.query(grafana(panel["targets"][0]["rawSql"]))
            assert rows, f"{name}: {panel['title']} answered no rows"
            if panel["type"] == "stat":
                column = panel["options"]["reduceOptions"]["fields"].strip("/^$")
                value = rows[0][column]
                assert value == pytest.approx(kpis[column]["value"]), panel["title"]
                stats += 1
    assert stats == 11
    by_stage = {r["stage"]: int(r["users"]) for r in store.query(grafana(panel_sql(
        "lifecycle.json", "Users by stage now")))}  # fmt: skip
    documents = scripted_rows()["user_scores"]
    assert by_stage == Counter(row["stage"] for row in documents)
    assert sum(by_stage.values()) == 6
    reactivations = store.query(grafana(panel_sql("lifecycle.json", "Reactivations per day")))
    assert [int(r["reactivations"]) for r in reactivations] == [1]  # f, on November 20
    api_rooms = rooms(store.query, NOVEMBER)
    panel_rooms = store.query(grafana(panel_sql("live-rooms.json", "Rooms")))
    assert [r["room_id"] for r in panel_rooms] == [r["room_id"] for r in api_rooms]
    assert float(panel_rooms[0]["gmv"]) == api_rooms[0]["gmv"] == 400.0


def panel_sql(dashboard: str, title: str) -> str:
    panels = json.loads((DASHBOARD_DIR / dashboard).read_text())["panels"]
    sql: str = next(p for p in panels if p["title"] == title)["targets"][0]["rawSql"]
    return sql


def test_a_period_ending_in_the_day_counts_the_users_first_seen_that_day(
    store: ClickHouseClient,
) -> None:
    # b was first seen on November 5 at 20:00, before the period's end at 21:00 that day.
    until_evening = Period.of(START, datetime(2026, 11, 5, 21, tzinfo=UTC))
    got = values(compute(store.query, until_evening, TARGETS))
    assert got["ltv"] == (150 + 200) / 2
