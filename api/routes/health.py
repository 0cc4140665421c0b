"""Liveness, readiness and Prometheus metrics; no key needed."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
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
async def readyz(view: ViewDep) -> JSONResponse:
    """Ready once the scores view has caught up with the topic."""
    body = {"ready": view.ready, "users": len(view.documents)}
    code = status.HTTP_200_OK if view.ready else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body, status_code=code)


@router.get("/metrics", include_in_schema=False)
async def metrics(view: ViewDep) -> Response:
    VIEW_USERS.set(len(view.documents))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
