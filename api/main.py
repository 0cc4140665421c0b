"""The FastAPI application factory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access_log import log_request
from api.clickhouse_reader import open_reader
from api.console_page import add_console
from api.docs_pages import add_offline_docs
from api.erasures_view import ErasuresView
from api.routes import erasures, events, health, kpis, models, segments, triggers, users
from api.scores_view import CompactedView, ScoresView
from api.triggers_view import TriggersView
from pipeline.domain.triggers import load_rules
from pipeline.metrics import REQUEST_SECONDS, REQUESTS
from pipeline.settings import Settings


def create_api(settings: Settings) -> FastAPI:
    """The service; refuses to build without keys, or with the dev keys outside embedded mode."""
    settings.check_api_keys()
    rules = load_rules(settings.triggers_file)
    view = ScoresView(settings)
    erasures_view = ErasuresView(settings)
    triggers_view = TriggersView(settings, rules, erasures_view)
    models_view = CompactedView(settings, settings.topic_models)
    status_view = CompactedView(settings, settings.worker_status_topic)  # workers' reports

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        app.state.producer = producer
        await view.start()
        await models_view.start()
        await status_view.start()
        await erasures_view.start()
        await triggers_view.start()
        yield
        await triggers_view.stop()
        await erasures_view.stop()
        await status_view.stop()
        await models_view.stop()
        await view.stop()
        await producer.stop()

    app = FastAPI(
        title="Lifecycle scoring API",
        version="0.1.0",
        description="Current lifecycle stage and scores per user, updated from the event stream.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    add_offline_docs(app)
    add_console(app)
    app.state.settings = settings
    app.state.clickhouse = open_reader(settings)
    app.state.view = view
    app.state.models_view = models_view
    app.state.status_view = status_view
    app.state.triggers_view = triggers_view
    app.state.erasures_view = erasures_view
    app.state.rules = rules
    app.state.validator = settings.validator()
    app.state.ingest_buckets = {}

    app.include_router(segments.router)  # /v1/users (the list) before /v1/users/{user_id}
    app.include_router(users.router)
    app.include_router(erasures.router)
    app.include_router(events.router)
    app.include_router(models.router)
    app.include_router(kpis.router)
    app.include_router(triggers.router)
    app.include_router(health.router)
    app.add_middleware(MeasureRequests)
    return app


class MeasureRequests:
    """Request count and latency per route (to the response's first byte, so a stream counts
    its start, not its length) and the access log's line (`api.access_log`), as plain ASGI
    middleware: Starlette's `BaseHTTPMiddleware` wraps every response in a task and a stream,
    a large share of a point read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        elapsed: float | None = None

        async def send_status(message: Message) -> None:
            nonlocal status, elapsed
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = time.perf_counter() - start
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            labels = (getattr(route, "path", "unmatched"), scope["method"], str(status))
            if elapsed is None:
                elapsed = time.perf_counter() - start
            REQUEST_SECONDS.labels(*labels).observe(elapsed)
            REQUESTS.labels(*labels).inc()
            log_request(labels[1], labels[0], status, elapsed)
