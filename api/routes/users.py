"""Users: the current score document of one user, with the purchase outlook at any time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status

from api.deps import ApiKey, ViewDep
from api.errors import errors
from api.examples import USER, ok
from api.outlook import outlook_at
from api.rfm_view import rescored
from api.routes.models import current_models
from schemas.scores import ScoreDocument

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.get(
    "/{user_id}", response_model=ScoreDocument, responses={**ok(USER), **errors(401, 403, 404, 422)}
)
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
    events: equal values, equal scores; the purchase outlook is on the purchase models in use
    (`model_versions.btyd`), also for a document written before their latest fit."""
    raw = view.get(user_id)
    if raw is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown user {user_id!r}")
    models = current_models(request.app.state.models_view)
    if as_of is None and horizon_days is None and _current(raw, models):
        return Response(content=raw, media_type="application/json")
    if as_of is not None and as_of.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "as_of needs a UTC offset")
    document = ScoreDocument.model_validate_json(raw)
    # RFM scores against the latest published version of the population.
    document = rescored(document, models) or document
    btyd = ((models or {}).get("versions") or {}).get("btyd")
    if as_of is None and horizon_days is None and document.model_versions.get("btyd") == btyd:
        return Response(content=document.model_dump_json(), media_type="application/json")
    # The purchase outlook on the models in use (a document written before the latest fit
    # is brought up to it, at its own time and horizon).
    own = document.purchase.as_of if document.purchase is not None else document.last_event_at
    when = as_of or own or document.updated_at
    horizon = horizon_days or request.app.state.settings.horizon_days
    purchase = outlook_at(document, models, when, horizon)
    versions = dict(document.model_versions)
    if btyd is not None:
        versions["btyd"] = btyd
    update = {"purchase": purchase, "model_versions": versions}
    body = document.model_copy(update=update).model_dump_json()
    return Response(content=body, media_type="application/json")


def _current(raw: bytes, models: dict[str, Any] | None) -> bool:
    """Whether a stored document was scored on the RFM scale and purchase models in use."""
    if models is None:
        return True
    scale, versions = models.get("rfm"), models.get("versions") or {}
    if scale is not None and f'"rfm":"rfm-{scale["version"]}"'.encode() not in raw:
        return False
    btyd = versions.get("btyd")
    return btyd is None or f'"btyd":"{btyd}"'.encode() in raw
