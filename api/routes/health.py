"""Liveness, readiness and Prometheus metrics; no key needed."""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ViewDep
from api.examples import HEALTHY, NOT_READY, READY, ok
from api.scores_view import CompactedView, ScoresView
from pipeline.metrics import API, API_READY, STALLED_WORKERS, VIEW_USERS, WORKERS_NOT_READY
from pipeline.readiness import readiness
from pipeline.settings import Settings
from pipeline.worker_status import WorkerReport

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@lru_cache(maxsize=4096)
def _report(raw: bytes) -> WorkerReport | None:
    """A report, decoded once however often readiness is asked."""
    return WorkerReport.decode(raw)


def ready_state(request: Request, view: ScoresView) -> dict[str, Any]:
    """Whether the API is ready, and why not: its views caught up with their topics, at
    least one worker reporting, and no worker that owns partitions stalled or silent for
    CHECKPOINT_STALL_SECONDS (see `pipeline.worker_status.readiness`)."""
    settings: Settings = request.app.state.settings
    triggers = request.app.state.triggers_view
    workers_view: CompactedView = request.app.state.status_view
    reasons: list[str] = []
    if not view.ready:
        reasons.append("the scores view is still loading")
    if not triggers.ready:
        reasons.append("the trigger feed is still loading")
    if not request.app.state.erasures_view.ready:
        reasons.append("the erasures are still loading")
    workers = stalled = held = 0
    if not workers_view.ready:
        reasons.append("the workers' status is still loading")
    else:
        reports = [r for raw in workers_view.documents.values() if (r := _report(raw))]
        verdict = readiness(
            reports, time.time(), settings.checkpoint_stall_seconds,
            settings.ready_max_lag_seconds, settings.topic_partitions,
        )  # fmt: skip
        reasons.extend(verdict.reasons)
        workers, stalled, held = verdict.workers, verdict.stalled, verdict.held
    _log_change(request, reasons)
    API_READY.set(0 if reasons else 1)
    STALLED_WORKERS.set(stalled)
    WORKERS_NOT_READY.set(held)
    return {
        "ready": not reasons,
        "users": len(view.documents),
        "triggers": triggers.ready,
        "workers": workers,
        "stalled_workers": stalled,
        "workers_not_ready": held,
        "reasons": reasons,
    }


def _log_change(request: Request, reasons: list[str]) -> None:
    """One line when readiness changes: not ready (WARNING, with why), ready again (INFO)."""
    was = getattr(request.app.state, "was_ready", None)
    now = not reasons
    if was is not None and was != now:
        if now:
            log.info("ready")
        else:
            log.warning("not ready: %s", "; ".join(reasons))
    request.app.state.was_ready = now


@router.get("/healthz", responses=ok(HEALTHY, "the process is up"))
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        **ok(READY, "ready"),
        503: {"description": "not ready: `reasons` says why",
              "content": {"application/json": {"example": NOT_READY}}},
    },
)  # fmt: skip
async def readyz(view: ViewDep, request: Request) -> JSONResponse:
    """Ready once the scores view and the trigger feed have caught up with their topics and
    the workers make their checkpoints; 503 with `reasons` otherwise."""
    body = ready_state(request, view)
    code = status.HTTP_200_OK if body["ready"] else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body, status_code=code)


@router.get("/metrics", include_in_schema=False)
async def metrics(view: ViewDep, request: Request) -> Response:
    VIEW_USERS.set(len(view.documents))
    ready_state(request, view)  # lifecycle_api_ready and the workers' gauges
    return Response(generate_latest(API), media_type=CONTENT_TYPE_LATEST)
