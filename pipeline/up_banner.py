"""What `lifecycle up` prints: the banner (where each part runs, how to try it) and a status
line every 15 s (events, dead letters, users, readiness and firing alerts)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import httpx

from pipeline.metrics import metric_sum
from pipeline.settings import DEV_API_KEY, DEV_KEYS, Settings


def keys_in_use(environ: Mapping[str, str]) -> str:
    """Which keys the API takes, per role: the embedded default's, or how many were set
    (never the keys themselves)."""
    roles = {"API_KEYS": "read", "ADMIN_API_KEYS": "admin", "PRODUCER_API_KEYS": "producer"}
    parts = []
    for variable, role in roles.items():
        if variable not in environ:
            parts.append(f"'{DEV_KEYS[variable]}' ({role})")
            continue
        try:
            count = len(json.loads(environ[variable]))
        except (ValueError, TypeError):
            count = 0
        parts.append(f"{count} {role} from {variable}")
    return ", ".join(parts)


def banner(settings: Settings, embedded: bool, demo: bool, logs: Path) -> str:
    host = settings.api_host
    base = f"http://{host}:{settings.api_port}"
    read_key = DEV_API_KEY if "API_KEYS" not in os.environ else "<a key of API_KEYS>"
    worker = f"http://{host}:{settings.worker_metrics_port}"
    clickhouse = settings.clickhouse_url
    if clickhouse.startswith("chdb:"):
        http = f"http://{host}:{settings.clickhouse_http_port}"
        clickhouse = f"{http}  (chDB in {settings.chdb_path()}, read-only HTTP by the worker)"
    traffic = "simulated users in live rooms, chats and orders" if demo else "off (--no-demo)"
    alerts = "off (PROMETHEUS_PORT=0)"
    if settings.prometheus_port:
        alerts = (
            f"http://{host}:{settings.prometheus_port}/alerts  (Prometheus evaluating "
            "deploy/prometheus/alerts.yml; runbooks in docs/runbooks.md)"
        )
    lines = [
        "",
        "lifecycle is running:",
        f"  broker      {settings.kafka_bootstrap}"
        + ("  (embedded Tansu, memory only)" if embedded else ""),
        f"  clickhouse  {clickhouse}",
        f"  worker      Faust scoring agent, metrics at {worker}/metrics, probes /healthz /readyz",
        f"  api         {base}  (console: {base}/, docs: {base}/docs, metrics: {base}/metrics)",
        f"  alerts      {alerts}",
        f"  demo        {traffic}",
        f"  logs        {logs}/",
    ]
    if embedded:
        lines.append(f"  api keys    {keys_in_use(os.environ)}")
    lines += [
        "",
        "try:",
        # Without the demo there is no u00001 yet (404); the KPIs answer from the start.
        f"  curl -s -H 'X-API-Key: {read_key}' {base}/v1/{'users/u00001' if demo else 'kpis'}",
        f"  curl -s {base}/readyz",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def status(settings: Settings) -> str:
    """One line: events scored, dead letters, users; why not ready; alerts firing. Each part
    is asked for on its own: one that does not answer does not hide the others."""
    host = settings.api_host
    parts: list[str] = []
    try:
        url = f"http://{host}:{settings.worker_metrics_port}/metrics"
        text = httpx.get(url, timeout=2.0).text
        scored = metric_sum(text, "lifecycle_events_scored_total")
        dead = metric_sum(text, "lifecycle_dead_letters_total")
        parts.append(f"{int(scored)} events scored, {int(dead)} dead letters")
    except httpx.HTTPError:
        parts.append("the worker's metrics do not answer")
    try:
        ready = httpx.get(f"http://{host}:{settings.api_port}/readyz", timeout=2.0).json()
        parts.append(f"{ready.get('users', 0)} users")
        if not ready.get("ready"):
            parts.append("not ready: " + "; ".join(ready.get("reasons") or ["unknown"]))
    except (httpx.HTTPError, ValueError):
        parts.append("the API does not answer")
    firing = _firing(settings)
    if firing:
        parts.append(f"alerts firing: {', '.join(firing)}")
    return "status: " + ", ".join(parts[:2]) + "".join(f"; {p}" for p in parts[2:])


def _firing(settings: Settings) -> list[str]:
    if not settings.prometheus_port:
        return []
    url = f"http://{settings.api_host}:{settings.prometheus_port}/api/v1/alerts"
    try:
        alerts = httpx.get(url, timeout=1.0).json()["data"]["alerts"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return []
    return sorted({a["labels"]["alertname"] for a in alerts if a.get("state") == "firing"})
