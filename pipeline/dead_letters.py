"""The dead-letter record: why a message was rejected, where it came from, its original bytes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson

from schemas.validation import Rejection


def dead_letter(
    rejection: Rejection,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> bytes:
    """JSON record for the `dead-letters` topic; the original value is kept base64-encoded."""
    return orjson.dumps(
        {
            "reason": rejection.reason,
            "field": rejection.field,
            "detail": rejection.detail,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key": key.decode("utf-8", "replace") if key is not None else None,
            "value_b64": base64.b64encode(value).decode() if value is not None else None,
            "rejected_at": datetime.now(tz=UTC).isoformat(),
        }
    )
