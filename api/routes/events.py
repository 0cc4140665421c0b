"""HTTP ingest for producers with no Kafka client: shop backends, webhooks, mini-program cloud
functions."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse

from api.answers import IngestAnswer
from api.deps import ProducerKey, SettingsDep
from api.errors import errors
from api.examples import EVENTS, ok
from api.ingest import BatchError, TokenBucket, split_batch
from pipeline.metrics import INGESTED
from pipeline.produce import kinds_of
from schemas.validation import MISSING_FIELD, UNKNOWN_TYPE, Rejection, kind_of_type

router = APIRouter(prefix="/v1/events", tags=["events"])

EXAMPLE = [
    {"event_id": "lv-1", "type": "like", "user_id": "u1", "ts": "2026-11-30T12:00:00Z",
     "room_id": "r1", "session_id": "s1"},
    {"event_id": "or-1", "type": "order_paid", "user_id": "u1", "ts": "2026-11-30T12:05:00Z",
     "order_id": "o1", "amount": "99.00", "currency": "CNY", "channel": "live"},
]  # fmt: skip


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (before reading it, when it says so)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the body is over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"the body is over {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _bucket(request: Request, key: str) -> TokenBucket:
    buckets: dict[str, TokenBucket] = request.app.state.ingest_buckets
    settings = request.app.state.settings
    if key not in buckets:
        rate = settings.ingest_events_per_second
        buckets[key] = TokenBucket(rate, 2 * rate)
    return buckets[key]


@router.post(
    "",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"type": "object"}},
                    "example": EXAMPLE,
                },
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "one JSON event per line"}
                },
            },
        }
    },
    responses={
        **ok(EVENTS, "every event's outcome, in the order sent", IngestAnswer),
        **errors(401, 403, 413, 422, 429, 503),
    },
)
async def send_events(request: Request, settings: SettingsDep, key: ProducerKey) -> JSONResponse:
    """Validate a batch of events (a JSON array, or NDJSON with Content-Type
    `application/x-ndjson`) by the worker's rules and produce each valid one to its type's
    input topic, keyed by `user_id`.

    Answers, per event in the order sent, `accepted` (with its topic) or `rejected` with the
    reason, the field at fault and a sentence; `accepted` and `rejected` count them. A
    rejected event is not sent and does not stop the others. Limits: `INGEST_MAX_BYTES`
    and `INGEST_MAX_EVENTS` (413), `INGEST_EVENTS_PER_SECOND` per key with bursts of twice
    that (429 with Retry-After). 503 when the broker does not take them (then nothing
    reported accepted can be counted on: send the batch again; the worker drops repeats
    by `event_id`)."""
    body = await _body(request, settings.ingest_max_bytes)
    try:
        messages = split_batch(body, request.headers.get("content-type", "application/json"))
    except BatchError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if len(messages) > settings.ingest_max_events:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(messages)} events, at most {settings.ingest_max_events} per batch",
        )
    wait = _bucket(request, key).take(len(messages))
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"over {settings.ingest_events_per_second:g} events per second for this key",
            headers={"Retry-After": str(max(1, math.ceil(wait))) if math.isfinite(wait) else "60"},
        )
    validator = request.app.state.validator
    topics = {kind: topic for topic, kind in kinds_of(settings).items()}
    producer: AIOKafkaProducer = request.app.state.producer
    now_ms = int(time.time() * 1000)
    results: list[dict[str, Any]] = []
    sends = []
    for index, (line, raw) in enumerate(messages):
        where = {"index": index} if line is None else {"index": index, "line": line}
        try:
            data = validator.decode(raw)
            if data.get("type") is None:
                raise Rejection(MISSING_FIELD, "type", "required field is missing")
            kind = kind_of_type(data.get("type"))
            if kind is None:
                raise Rejection(UNKNOWN_TYPE, "type", f"{data.get('type')!r} is no event type")
            event = validator.check(kind, data, now_ms)
        except Rejection as rejection:
            INGESTED.labels("rejected", rejection.reason).inc()
            results.append({**where, "status": "rejected", "reason": rejection.reason,
                            "field": rejection.field, "detail": rejection.detail})  # fmt: skip
            continue
        topic = topics[kind]
        sends.append(await producer.send(topic, value=raw, key=event.user_id.encode()))
        results.append({**where, "status": "accepted", "event_id": event.event_id,
                        "topic": topic})  # fmt: skip
    try:
        await asyncio.gather(*sends)
    except KafkaError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the broker did not take the events: {exc}"
        ) from exc
    accepted = sum(1 for r in results if r["status"] == "accepted")
    INGESTED.labels("accepted", "").inc(accepted)
    return JSONResponse(
        {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
    )
