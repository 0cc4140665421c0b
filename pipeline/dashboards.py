"""The Grafana dashboards that read ClickHouse, generated from the SQL the API uses, so that a
KPI means the same on a dashboard and in `GET /v1/kpis`.

    python -m pipeline.dashboards deploy/grafana/dashboards

writes `kpis.json`, `live-rooms.json`, `lifecycle.json` and `pipeline-health.json` (Prometheus;
the triggers dashboard is kept by hand); the tests check that the files are what this writes,
run every panel's SQL on both stores and every PromQL panel on a Prometheus scraping a live
worker and API.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pipeline.kpis import (
    Period,
    cycle_sql,
    engagement_sql,
    ltv_sql,
    repurchase_sql,
    retention_sql,
    value_sql,
)
from pipeline.kpis_rooms import broadcasts_sql, rooms_sql
from pipeline.settings import KPI_TARGETS

# Panels read the data source the dashboard's `datasource` variable picks: `ClickHouse` (a
# server) or `ClickHouse (embedded)` (chDB through the worker's HTTP interface).
DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}
CHOOSE_CLICKHOUSE = {
    "templating": {"list": [{
        "name": "datasource", "label": "ClickHouse", "type": "datasource",
        "query": "grafana-clickhouse-datasource", "current": {"text": "ClickHouse",
                                                              "value": "clickhouse"},
        "hide": 0, "refresh": 1,
    }]},
}  # fmt: skip
GRAFANA = Period.grafana()


def _target(sql: str) -> dict[str, Any]:
    text = "\n".join(line.strip() for line in sql.strip().splitlines())
    return {"refId": "A", "datasource": DATASOURCE, "editorType": "sql", "format": 1,
            "queryType": "table", "rawSql": text}  # fmt: skip


def _stat(title: str, sql: str, column: str, unit: str, target: float | None,
          description: str) -> dict[str, Any]:  # fmt: skip
    steps: list[dict[str, Any]] = [{"color": "text", "value": None}]
    if target is not None:
        steps = [{"color": "red", "value": None}, {"color": "green", "value": target}]
    return {
        "type": "stat", "title": title, "description": description, "targets": [_target(sql)],
        "options": {"reduceOptions": {"fields": f"/^{column}$/", "calcs": ["lastNotNull"]}},
        "fieldConfig": {"defaults": {"unit": unit, "decimals": 2,
                                     "thresholds": {"mode": "absolute", "steps": steps}},
                        "overrides": []},
    }  # fmt: skip


def _table(title: str, sql: str, description: str) -> dict[str, Any]:
    return {"type": "table", "title": title, "description": description,
            "targets": [_target(sql)]}  # fmt: skip


def _timeseries(title: str, sql: str, description: str) -> dict[str, Any]:
    target = _target(sql)
    target["format"] = 0
    return {"type": "timeseries", "title": title, "description": description,
            "targets": [target]}  # fmt: skip


def _dashboard(
    uid: str, title: str, panels: list[dict[str, Any]], clickhouse: bool = True
) -> dict[str, Any]:
    for n, panel in enumerate(panels):
        width = 6 if panel["type"] == "stat" else 24
        per_row = 24 // width
        row, column = divmod(n, per_row) if width == 6 else (n, 0)
        panel["id"] = n + 1
        panel["gridPos"] = {"h": 5 if width == 6 else 9, "w": width, "x": column * width,
                            "y": row * 9}  # fmt: skip
    out = {"uid": uid, "title": title, "tags": ["lifecycle"], "schemaVersion": 39,
           "version": 1, "editable": True, "refresh": "1m",
           "time": {"from": "now-30d", "to": "now"}, "panels": panels}  # fmt: skip
    return {**out, **CHOOSE_CLICKHOUSE} if clickhouse else out


def kpis() -> dict[str, Any]:
    """KPIs against their targets over the dashboard's time range (stat panels turn green
    above the target)."""
    e, v = engagement_sql(GRAFANA), value_sql(GRAFANA)
    t = KPI_TARGETS
    stats = [
        ("Open rate", e, "open_rate", "percentunit", t["open_rate"], "touch_opened / touch_sent"),
        ("Interactions per user per month", e, "interaction_frequency", "none",
         t["interaction_frequency"], "interactions per interacting user per 30 days"),
        ("Conversion", e, "conversion", "percentunit", t["conversion"],
         "users with a paid order / users who interacted"),
        ("Repurchase within 90 days", repurchase_sql(GRAFANA), "repurchase", "percentunit",
         t["repurchase"], "first buyers of the range whose 90 days have passed"),
        ("Repurchase cycle (median days)", cycle_sql(GRAFANA), "repurchase_cycle_days", "d",
         None, "days between consecutive paid orders, gaps ending in the range"),
        ("GMV", v, "gmv", "none", None, "paid orders in the range, base currency"),
        ("AOV", v, "aov", "none", None, "GMV / orders"),
        ("ARPU", v, "arpu", "none", None, "GMV / users who interacted"),
        ("ARPPU", v, "arppu", "none", None, "GMV / payers"),
        ("Top 15% share of GMV", v, "top15_share", "percentunit", None,
         "share of GMV from the top 15% of payers"),
        ("LTV of users first seen in the range", ltv_sql(GRAFANA), "ltv", "none", None,
         "paid minus refunded to date, per user"),
    ]  # fmt: skip
    panels = [_stat(*stat) for stat in stats]
    panels.append(_table(
        "Retention of users first seen in the range (D1 > 25%, D7 > 15%)",
        retention_sql(GRAFANA), "n: days after the first interaction; eligible users only",
    ))  # fmt: skip
    return _dashboard("lifecycle-kpis", "Lifecycle KPIs against target", panels)


def live_rooms() -> dict[str, Any]:
    return _dashboard("lifecycle-live-rooms", "Live rooms", [
        _table("Rooms", rooms_sql(GRAFANA),
               "viewers, watch time, interaction, negative comments, conversions, GMV"),
        _table("Broadcasts", broadcasts_sql(GRAFANA),
               "each session_id: its span and GMV paid within it"),
        _timeseries("Negative share of live comments, per hour", f"""
            SELECT toStartOfHour(ts) AS time, room_id,
                   countIf(sentiment = 'negative') / count() AS negative_share
            FROM events FINAL
            WHERE type = 'comment' AND room_id != '' AND {GRAFANA.within()}
            GROUP BY time, room_id ORDER BY time, room_id""",
            "comments classified negative / comments"),
    ])  # fmt: skip


def lifecycle() -> dict[str, Any]:
    return _dashboard("lifecycle-overview", "Lifecycle overview", [
        _table("Users by stage now", """
            SELECT stage, count() AS users FROM (
                SELECT user_id, argMax(stage, version) AS stage FROM user_scores GROUP BY user_id)
            GROUP BY stage ORDER BY users DESC""",
            "each user's latest score document"),
        _timeseries("Stage changes per day", f"""
            SELECT toStartOfDay(at) AS time, concat(from_stage, ' > ', to_stage) AS flow,
                   count() AS users
            FROM stage_transitions FINAL WHERE valid = 1 AND {GRAFANA.within("at")}
            GROUP BY time, flow ORDER BY time, flow""",
            "corrected history: retracted changes are left out"),
        _timeseries("Reactivations per day", f"""
            SELECT toStartOfDay(at) AS time, count() AS reactivations
            FROM stage_transitions FINAL
            WHERE valid = 1 AND reactivation = 1 AND {GRAFANA.within("at")}
            GROUP BY time ORDER BY time""",
            "returns from silent or churned"),
    ])  # fmt: skip


PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}

# Pipeline health panels: (title, PromQL, unit, description).
HEALTH = (
    ("Events scored per second", "sum(rate(lifecycle_events_scored_total[1m]))", "ops",
     "events applied to user state"),
    ("Events read per second, by topic", "sum by (topic) (rate(lifecycle_events_in_total[1m]))",
     "ops", "messages read from the input topics"),
    ("Dead letters per second, by reason",
     "sum by (reason) (rate(lifecycle_dead_letters_total[5m]))", "ops",
     "messages rejected to dead-letters"),
    ("Event time behind the wall clock", "time() - max(lifecycle_event_clock_seconds)", "s",
     "how far the latest event applied is behind now"),
    ("Checkpoint age", "max by (engine) (lifecycle_checkpoint_age_seconds)", "s",
     "seconds since each engine last made its work durable"),
    ("ClickHouse rows waiting", "sum(lifecycle_sink_pending_rows)", "none",
     "rows buffered for the next insert (grows while the store refuses writes)"),
    ("Triggers per second, by rule", "sum by (rule) (rate(lifecycle_triggers_total[5m]))",
     "ops", "triggers fired"),
    ("API p99 latency, by route", "histogram_quantile(0.99, sum by (le, route) "
     "(rate(lifecycle_api_request_seconds_bucket[5m])))", "s", "to the first byte"),
    ("Consumer lag, by engine and topic",
     "sum by (engine, topic) (lifecycle_consumer_lag)", "none",
     "records of the assigned input partitions not read yet"),
    ("Written to score published, p99",
     "histogram_quantile(0.99, sum by (le) (rate(lifecycle_ingest_to_score_seconds_bucket[5m])))",
     "s", "live events: from their Kafka record time to the user's score document sent"),
    ("Checkpoint duration p99, by engine", "histogram_quantile(0.99, sum by (le, engine) "
     "(rate(lifecycle_checkpoint_duration_seconds_bucket[5m])))", "s",
     "from a checkpoint's snapshot to its offsets committed"),
    ("Models ready", "min by (model) (lifecycle_model_ready)", "none",
     "1 when the published model acts (GET /v1/models says why not)"),
    ("Users in state", "sum(lifecycle_state_users)", "none", "users held by the workers"),
    ("Processes up", "up", "none", "1 for each API and worker Prometheus scrapes"),
)  # fmt: skip


def pipeline_health() -> dict[str, Any]:
    panels = []
    for title, expr, unit, description in HEALTH:
        panels.append({
            "type": "timeseries", "title": title, "description": description,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "datasource": PROMETHEUS, "expr": expr}],
        })  # fmt: skip
    return _dashboard("lifecycle-pipeline-health", "Pipeline health", panels, clickhouse=False)


DASHBOARDS = {
    "kpis.json": kpis, "live-rooms.json": live_rooms, "lifecycle.json": lifecycle,
    "pipeline-health.json": pipeline_health,
}  # fmt: skip


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(directory: str) -> None:
    for name, build in DASHBOARDS.items():
        (Path(directory) / name).write_text(render(build))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "deploy/grafana/dashboards")
