"""The worker's own HTTP endpoints on `WORKER_METRICS_PORT` (loopback by default), served from a
thread of their own (the standard library's threading WSGI server, as prometheus_client's),
so they answer within milliseconds while the event loop scores a backlog:

- `GET /metrics`: Prometheus text exposition of `pipeline.metrics.WORKER`.
- `GET /healthz`: 200 `{"status": "ok"}` while the event loop runs its status check (every
  second); 503 once it has not for `CHECKPOINT_STALL_SECONDS` (a loop stuck for good: a
  liveness probe restarts the process).
- `GET /readyz`: 200 `{"ready": true, ...}` once every engine has joined its consumer group and
  none is stalled, restoring, catching up since assignment or more than
  `READY_MAX_LAG_SECONDS` behind; else 503 with `reasons` (a readiness probe: a rolling update
  waits for it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import orjson
from mode import Service
from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from agents.status import StatusService
from pipeline.metrics import WORKER

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No line per request (probes and scrapes come every few seconds)."""


class WorkerHttp(Service):
    """Serves /metrics, /healthz and /readyz on `host:port` until the worker stops; a port in
    use stops the start (without it nobody sees the worker's metrics)."""

    def __init__(self, host: str, port: int, status: StatusService, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host, self.port, self.status = host, port, status
        self._metrics = make_wsgi_app(WORKER)
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    async def on_start(self) -> None:
        server = make_server(self.host, self.port, self.app, ThreadingWSGIServer, _Quiet)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="worker-http", daemon=True
        )
        self._thread.start()

    async def on_stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, *self.health())
        if path == "/readyz":
            return _json(start_response, *self.readiness())
        return self._metrics(environ, start_response)  # type: ignore[no-any-return]

    def health(self) -> tuple[int, dict[str, Any]]:
        """200 while the event loop checks the engines; 503 once it has not for the stall
        time (it is stuck)."""
        silent = time.monotonic() - self.status.last_tick
        limit = self.status.settings.checkpoint_stall_seconds
        if silent > limit:
            why = f"the event loop has not run its status check for {silent:.0f} s"
            return 503, {"status": "stuck", "reasons": [why]}
        return 200, {"status": "ok"}

    def readiness(self) -> tuple[int, dict[str, Any]]:
        report = self.status.last_report
        if report is None:
            return 503, {"ready": False, "reasons": ["the worker is starting"]}
        why = self.status.verdict(report)
        body = {
            "ready": why is None,
            "reasons": [] if why is None else [why],
            "worker": report.worker,
            "partitions": report.partitions,
            "lag": report.lag,
            "lag_seconds": report.lag_seconds,
        }
        return (200 if why is None else 503), body


def _json(start_response: StartResponse, status: int, body: dict[str, Any]) -> list[bytes]:
    data = orjson.dumps(body)
    phrase = "200 OK" if status == 200 else "503 Service Unavailable"
    start_response(phrase, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])  # fmt: skip
    return [data]
