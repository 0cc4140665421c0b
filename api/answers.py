"""Shapes of the answers the API builds as plain dicts (for the OpenAPI document, which
schemathesis checks the answers against; the routes do not validate them on the way out)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class UserItem(BaseModel):
    user_id: str
    stage: str | None
    segment: str | None
    rfm_class: str | None


class UsersPage(BaseModel):
    """A page of `GET /v1/users`; `cursor` is null after the last page."""

    items: list[UserItem]
    cursor: str | None


class SegmentCounts(BaseModel):
    total_users: int
    buyers: int
    by_stage: dict[str, int]
    by_segment: dict[str, int]
    by_class: dict[str, int]
    rfm_version: str | None


class IngestResult(BaseModel):
    """One event's outcome: accepted (its `event_id` and `topic`) or rejected (`reason`,
    `field`, `detail`); `line` for NDJSON."""

    index: int
    line: int | None = None
    status: Literal["accepted", "rejected"]
    event_id: str | None = None
    topic: str | None = None
    reason: str | None = None
    field: str | None = None
    detail: str | None = None


class IngestAnswer(BaseModel):
    accepted: int
    rejected: int
    results: list[IngestResult]
