"""Triggers: the feed of fired triggers, as pages and as a live stream (server-sent events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from api.deps import ApiKey
from api.errors import errors
from api.examples import STREAM, TRIGGERS, ok
from api.triggers_view import BadCursor, TriggersView, decode_cursor, encode_cursor
from schemas.triggers import TriggerPage

router = APIRouter(prefix="/v1/triggers", tags=["triggers"])

KEEPALIVE_SECONDS = 15.0
CursorQuery = Annotated[
    str | None, Query(max_length=4096, description="Continue after this cursor; empty: oldest.")
]
RuleQuery = Annotated[str | None, Query(description="Only triggers of this rule.")]


def _view(request: Request) -> TriggersView:
    view: TriggersView = request.app.state.triggers_view
    return view


def _checked(request: Request, cursor: str | None, rule: str | None) -> dict[int, int]:
    if rule is not None and rule not in request.app.state.rules.names:
        known = ", ".join(request.app.state.rules.names)
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown rule {rule!r} (rules: {known})"
        )
    try:
        return decode_cursor(cursor)
    except BadCursor as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


@router.get("", response_model=TriggerPage, responses={**ok(TRIGGERS), **errors(401, 403, 422)})
async def list_triggers(
    request: Request,
    _key: ApiKey,
    cursor: CursorQuery = None,
    rule: RuleQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Fired triggers after `cursor`, oldest first; `cursor` in the answer continues after
    the page (pass it back for the next page, or later for what fired since)."""
    positions = _checked(request, cursor, rule)
    items, after = _view(request).page(positions, rule, limit)
    body = b'{"items":[' + b",".join(value for value, _ in items) + b'],"cursor":"'
    body += encode_cursor(after).encode() + b'"}'
    return Response(content=body, media_type="application/json")


@router.get(
    "/stream",
    responses={
        200: {"description": "server-sent events, one per trigger, live",
              "content": {"text/event-stream": {"example": STREAM}}},
        **errors(401, 403, 422),
    },
)  # fmt: skip
async def stream_triggers(
    request: Request,
    _key: ApiKey,
    cursor: CursorQuery = None,
    rule: RuleQuery = None,
    last_event_id: Annotated[str | None, Header(max_length=4096)] = None,
) -> StreamingResponse:
    """Server-sent events: every trigger after the cursor, then each new one as it fires.

    Each event's `id` is the cursor after it: a client that reconnects with `Last-Event-ID`
    (or `?cursor=`) resumes exactly where it stopped. A comment line keeps idle connections
    open every 15 seconds."""
    positions = _checked(request, last_event_id or cursor, rule)
    view = _view(request)

    async def events() -> AsyncIterator[bytes]:
        nonlocal positions
        yield b": lifecycle triggers\n\n"
        while not await request.is_disconnected():
            changed = view.changed
            items, after = view.page(positions, rule, 500)
            for value, position in items:
                yield b"id: " + encode_cursor(position).encode() + b"\nevent: trigger\ndata: "
                yield value + b"\n\n"
            positions = after
            if items:
                continue
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield b": keepalive\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
