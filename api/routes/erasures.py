"""Erasure of a person (PIPL): `DELETE /v1/users/{user_id}` and `GET /v1/erasures/{id}`."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import AdminKey, ApiKey, SettingsDep
from api.erasures_view import ErasuresView
from api.errors import errors
from api.examples import ERASURE_COMPLETE, ERASURE_REQUESTED
from pipeline.erasure import Erasure
from pipeline.stream.compacted import CompactedView
from schemas.limits import ID_MAX_LENGTH, ID_PATTERN

router = APIRouter(tags=["erasure"])


class ErasureStatus(BaseModel):
    """An erasure and how far it got."""

    erasure_id: str
    status: Literal["requested", "complete"] = Field(
        description="`complete` once the person's state, changelog record, ClickHouse rows and "
        "score document are gone everywhere and this service's own views no longer have them"
    )
    user_id: str | None = Field(
        None, description="only while requested: the complete record no longer names the user"
    )
    requested_at: datetime
    completed_at: datetime | None = None
    state_found: bool | None = Field(
        None, description="whether a worker held state for the user (when complete)"
    )
    rows_deleted: dict[str, int] = Field(
        default_factory=dict, description="ClickHouse rows deleted per table (when complete)"
    )


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def status_of(erasure: Erasure, scores: CompactedView) -> ErasureStatus:
    """Complete once the worker says so and the scores view has read its tombstone."""
    tombstone = erasure.scores_tombstone
    done = erasure.status == "complete" and (tombstone is None or scores.read_past(*tombstone))
    return ErasureStatus(
        erasure_id=erasure.erasure_id,
        status="complete" if done else "requested",
        user_id=erasure.user_id,
        requested_at=_at(erasure.requested_ms) or datetime.now(tz=UTC),
        completed_at=_at(erasure.completed_ms) if done else None,
        state_found=erasure.state_found if done else None,
        rows_deleted=erasure.rows_deleted if done else {},
    )


@router.delete(
    "/v1/users/{user_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureStatus,
    responses={
        202: {"description": "erasure requested; `Location` is its status",
              "content": {"application/json": {"example": ERASURE_REQUESTED}}},
        **errors(401, 403, 422),
    },
)  # fmt: skip
async def erase_user(
    user_id: Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)],
    request: Request,
    response: Response,
    settings: SettingsDep,
    _key: AdminKey,
) -> ErasureStatus:
    """Erase a person (admin key): their state in the worker (memory, local store, a
    tombstone in the changelog), every ClickHouse row about them (events, stage history,
    scores, triggers, trigger outcomes), a tombstone on `user-scores`, this service's view
    and the trigger feed's entries about them. Events of the person recorded before the
    request and read later (a backlog, a replay) are dropped; an event sent afterwards starts
    a new person. Any valid id is accepted, known or not (rows may exist for a user with no
    state). Answers 202 at once; `GET /v1/erasures/{erasure_id}` says when it is complete."""
    erasure = Erasure.request(uuid.uuid4().hex, user_id, int(time.time() * 1000))
    await request.app.state.producer.send_and_wait(
        settings.erasures_topic, erasure.to_bytes(), key=erasure.erasure_id.encode()
    )
    view: ErasuresView = request.app.state.erasures_view
    view.on_record(erasure.erasure_id, erasure.to_bytes())  # readable here at once
    response.headers["Location"] = f"/v1/erasures/{erasure.erasure_id}"
    return status_of(erasure, request.app.state.view)


@router.get(
    "/v1/erasures/{erasure_id}",
    response_model=ErasureStatus,
    responses={
        200: {"description": "the erasure",
              "content": {"application/json": {"example": ERASURE_COMPLETE}}},
        **errors(401, 403, 404, 422),
    },
)  # fmt: skip
async def get_erasure(erasure_id: str, request: Request, _key: ApiKey) -> ErasureStatus:
    """An erasure's status: `requested` until the worker that owns the person's partition
    has made it durable everywhere and this service has read the score document's
    tombstone, then `complete` with the rows deleted per table."""
    view: ErasuresView = request.app.state.erasures_view
    erasure = view.log.get(erasure_id)
    if erasure is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown erasure {erasure_id!r}")
    return status_of(erasure, request.app.state.view)
