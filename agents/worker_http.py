"""The worker's own HTTP endpoints on `WORKER_METRICS_PORT` (loopback by default):

- `GET /metrics`: Prometheus text exposition of `pipeline.metrics.WORKER`.
- `GET /healthz`: 200 `{"status": "ok"}` while the process's event loop answers (a liveness
  probe; a failed engine loop stops the process itself).
- `GET /readyz`: 200 `{"ready": true, ...}` once the worker has checked its engines and none
  is stalled, restoring, catching up since assignment or more than `READY_MAX_LAG_SECONDS`
  behind; else 503 with `reasons` (a readiness probe: a rolling update waits for it).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.status import StatusService
from pipeline.metrics import WORKER

log = logging.getLogger(__name__)


class WorkerHttp(Service):
    """Serves /metrics, /healthz and /readyz on `host:port` until the worker stops."""

    def __init__(self, host: str, port: int, status: StatusService, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host, self.port, self.status = host, port, status
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # A port in use stops the start: without it nobody sees the worker's metrics.
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(WORKER), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _healthz(self, _request: web.Request) -> web.Response:
        return _json({"status": "ok"}, 200)

    async def _readyz(self, _request: web.Request) -> web.Response:
        report = self.status.last_report
        if report is None:
            return _json({"ready": False, "reasons": ["the worker is starting"]}, 503)
        why = self.status.verdict(report)
        body = {
            "ready": why is None,
            "reasons": [] if why is None else [why],
            "worker": report.worker,
            "partitions": report.partitions,
            "lag": report.lag,
            "lag_seconds": report.lag_seconds,
        }
        return _json(body, 200 if why is None else 503)


def _json(body: dict[str, Any], status: int) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
