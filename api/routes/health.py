"""Liveness, readiness and Prometheus metrics; no key needed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ViewDep
from api.metrics import VIEW_USERS

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(view: ViewDep, request: Request) -> JSONResponse:
    """Ready once the scores view and the trigger feed have caught up with their topics."""
    triggers = request.app.state.triggers_view
    ready = view.ready and triggers.ready
    body = {"ready": ready, "users": len(view.documents), "triggers": triggers.ready}
    code = status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body, status_code=code)


@router.get("/metrics", include_in_schema=False)
async def metrics(view: ViewDep) -> Response:
    VIEW_USERS.set(len(view.documents))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
