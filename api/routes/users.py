"""Users: the current score document of one user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from api.deps import ApiKey, ViewDep
from schemas.scores import ScoreDocument

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.get("/{user_id}", response_model=ScoreDocument)
async def get_user(
    user_id: Annotated[str, Path(min_length=1, max_length=128)], view: ViewDep, _key: ApiKey
) -> Response:
    """The user's stage (and since when), orders, monetary total and last event time."""
    document = view.get(user_id)
    if document is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown user {user_id!r}")
    return Response(content=document, media_type="application/json")
