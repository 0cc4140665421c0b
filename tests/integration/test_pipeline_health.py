"""Every panel of the pipeline-health dashboard, run on Debian's Prometheus scraping a live
worker and API: each query is valid and answers series where the data exists."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from pipeline.demo import topics_of
from schemas.client import EventProducer
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from tests.integration.conftest import chdb_pipeline
from tests.integration.parts import start_prometheus, wait_until

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/dashboards/pipeline-health.json"


def test_every_pipeline_health_panel_answers_on_prometheus(broker: str, tmp_path: Path) -> None:
    with chdb_pipeline(broker, tmp_path, f"ph{uuid.uuid4().hex[:8]}") as running:
        settings = running.settings
        now = datetime.now(tz=UTC)
        with EventProducer(settings.kafka_bootstrap, topics=topics_of(settings)) as producer:
            producer.send(LiveEvent(event_id="ph-l", type="like", user_id="ph-u", ts=now,
                                    room_id="r", session_id="s"))  # fmt: skip
            producer.send(OrderEvent(event_id="ph-o", type="order_paid", user_id="ph-u", ts=now,
                                     order_id="o1", amount="10.00", currency="CNY"))  # fmt: skip
        bad = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        bad.send(settings.topic_live, value=b"not json", key=b"ph-u")  # a dead letter
        bad.flush()
        bad.close()
        wait_until(lambda: running.get("/v1/users/ph-u").status_code == 200, 30, "scoring")
        targets = {"lifecycle-api": settings.api_port,
                   "lifecycle-worker": settings.worker_metrics_port}  # fmt: skip
        prometheus, port = start_prometheus(tmp_path / "prometheus", targets)
        try:

            def query(expr: str) -> list[Any]:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/query",
                                   params={"query": expr}, timeout=5).json()  # fmt: skip
                assert answer["status"] == "success", (expr, answer)
                result: list[Any] = answer["data"]["result"]
                return result

            # Two scrapes of both, so that rates have their two samples.
            wait_until(lambda: len(query("count_over_time(up[1m]) >= 3")) == 2, 60,
                       "Prometheus to scrape the API and the worker")  # fmt: skip
            running.get("/v1/segments")  # an API request for the latency panel
            wait_until(lambda: query("lifecycle_api_requests_total"), 30, "API requests")
            panels = json.loads(DASHBOARD.read_text())["panels"]
            for panel in panels:
                expr = panel["targets"][0]["expr"]
                series = wait_until(lambda expr=expr: query(expr), 30, panel["title"])  # type: ignore[misc]
                assert series, panel["title"]
            up = {s["metric"]["job"]: s["value"][1] for s in query("up")}
            assert up == {"lifecycle-api": "1", "lifecycle-worker": "1"}
        finally:
            prometheus.stop()
