"""Lists of users and counts by stage, segment and class, from the current scores."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, HTTPException, Query, Request, status

from api.answers import SegmentCounts, UsersPage
from api.deps import ApiKey, ViewDep
from api.errors import errors
from api.examples import SEGMENT_COUNTS, USERS_PAGE, ok
from api.routes.models import current_models
from api.user_index import BadCursor, decode_cursor
from pipeline.domain.rfm import SEGMENTS
from pipeline.domain.rfm_scale import RfmScale
from pipeline.domain.stages import Stage

router = APIRouter(tags=["users"])

StageFilter = Literal["potential", "new", "active", "silent", "churned", "none"]
assert set(get_args(StageFilter)) == {stage.value for stage in Stage} | {"none"}
StageQuery = Annotated[
    StageFilter | None,
    Query(description="Only users in this stage; `none`: users with no stage yet."),
]
Segment = Literal[
    "Champions", "At risk", "Loyal", "Need attention", "Promising", "Potential loyalist",
    "New customer", "Hibernating",
]  # fmt: skip
assert set(get_args(Segment)) == set(SEGMENTS)
SegmentQuery = Annotated[Segment | None, Query(description="Only buyers in this RFM segment.")]


def _scale(request: Request) -> RfmScale | None:
    models = current_models(request.app.state.models_view)
    rfm = (models or {}).get("rfm")
    return RfmScale.from_dict(rfm) if rfm else None


@router.get(
    "/v1/users", response_model=None,
    responses={**ok(USERS_PAGE, model=UsersPage), **errors(401, 403, 422)},
)  # fmt: skip
async def list_users(
    request: Request,
    view: ViewDep,
    _key: ApiKey,
    stage: StageQuery = None,
    segment: SegmentQuery = None,
    rfm_class: Annotated[
        str | None,
        Query(alias="class", pattern="^[ABC]$", description="Only buyers of this class."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> dict[str, Any]:
    """Users matching every filter given (`stage`, `segment`, `class`), in ascending order
    of `user_id`, `limit` at a time: `{"items": [{user_id, stage, segment, rfm_class}],
    "cursor"}`; pass `cursor` back for the next page (null after the last). Segment and class
    are against the latest published RFM scale, as each document is served."""
    try:
        after = decode_cursor(cursor) if cursor else None
    except BadCursor as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    items, next_cursor = view.index.page(
        _scale(request), stage=stage, segment_=segment,
        class_=rfm_class, after=after, limit=limit,
    )  # fmt: skip
    return {"items": items, "cursor": next_cursor}


@router.get(
    "/v1/segments", response_model=None,
    responses={**ok(SEGMENT_COUNTS, model=SegmentCounts), **errors(401, 403)},
)  # fmt: skip
async def segments(request: Request, view: ViewDep, _key: ApiKey) -> dict[str, Any]:
    """`total_users`, `buyers`, and counts `by_stage`, `by_segment` and `by_class` (buyers,
    against the latest published RFM scale, `rfm_version`)."""
    return view.index.counts(_scale(request))
