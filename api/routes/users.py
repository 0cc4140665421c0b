"""Users: the current score document of one user, with the purchase outlook at any time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status

from api.deps import ApiKey, ViewDep
from api.outlook import outlook_at
from api.rfm_view import rescored
from api.routes.models import current_models
from schemas.scores import ScoreDocument

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.get("/{user_id}", response_model=ScoreDocument)
async def get_user(
    user_id: Annotated[str, Path(min_length=1, max_length=128)],
    view: ViewDep,
    request: Request,
    _key: ApiKey,
    as_of: Annotated[
        datetime | None,
        Query(
            description="Time of the purchase outlook (RFC 3339 with offset). Default: the "
            "document's own time, the user's event clock (`purchase.as_of`), with or without "
            "`horizon_days`; pass the current time for an outlook at the wall clock."
        ),
    ] = None,
    horizon_days: Annotated[
        float | None,
        Query(
            gt=0,
            le=3650,
            description="Horizon of expected purchases and CLV, days. Default: "
            "`HORIZON_DAYS` (the document's own).",
        ),
    ] = None,
) -> Response:
    """Stage (and since when), RFM scores, segment and class, churn probability, P(alive),
    expected purchases over `horizon_days`, expected order value, CLV, engagement, last
    sentiment, last event time and model versions.

    The purchase outlook is at `as_of`, by default the document's own time (the user's
    event clock) whichever other parameter is given: `?horizon_days=365` changes only the
    horizon. RFM scores are against the latest version of the population the worker
    published (`model_versions.rfm`), so they follow the population between the user's own
    events: equal values, equal scores."""
    raw = view.get(user_id)
    if raw is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown user {user_id!r}")
    models = current_models(request.app.state.models_view)
    scale = (models or {}).get("rfm")
    current = scale is None or f'"rfm":"rfm-{scale["version"]}"'.encode() in raw
    if as_of is None and horizon_days is None and current:
        return Response(content=raw, media_type="application/json")
    if as_of is not None and as_of.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "as_of needs a UTC offset")
    document = ScoreDocument.model_validate_json(raw)
    # RFM scores against the latest published version of the population.
    document = rescored(document, models) or document
    if as_of is None and horizon_days is None:
        return Response(content=document.model_dump_json(), media_type="application/json")
    own = document.purchase.as_of if document.purchase is not None else document.last_event_at
    when = as_of or own or document.updated_at
    horizon = horizon_days or request.app.state.settings.horizon_days
    purchase = outlook_at(document, models, when, horizon)
    body = document.model_copy(update={"purchase": purchase}).model_dump_json()
    return Response(content=body, media_type="application/json")
