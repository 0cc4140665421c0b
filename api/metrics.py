"""The API's Prometheus metrics, declared in one place."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Buckets from 0.5 ms: point reads from memory should sit in the first few.
REQUEST_SECONDS = Histogram(
    "lifecycle_api_request_seconds",
    "API request latency by route",
    ["route", "method", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
REQUESTS = Counter("lifecycle_api_requests_total", "API requests", ["route", "method", "status"])
VIEW_USERS = Gauge("lifecycle_api_view_users", "Users in the API's scores view")
API_READY = Gauge("lifecycle_api_ready", "1 when /readyz answers ready, else 0")
STALLED_WORKERS = Gauge(
    "lifecycle_api_stalled_workers",
    "Workers holding readiness back: stalled, or silent while the latest owner of a partition",
)
INGESTED = Counter(
    "lifecycle_api_ingested_events_total",
    "Events sent over HTTP (POST /v1/events): accepted, or rejected by reason",
    ["outcome", "reason"],
)
