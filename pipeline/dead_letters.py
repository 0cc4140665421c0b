"""The dead-letter records: why a message was rejected, where it came from, its original bytes;
and a row ClickHouse refused, with the event it came from."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from pipeline.rows import EVENT_TEXT_FIELDS
from schemas.validation import Rejection
from sinks.base import RefusedRow, Row


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


SINK_REJECTED = "sink_rejected"

_INT64 = range(-(2**63), 2**64)


def _jsonable(value: Any) -> Any:
    """A refused row's value as JSON can carry it, whatever it is (it was refused for a
    reason): datetimes as ISO text, Decimals and integers beyond 64 bits as text, strings
    that are not valid UTF-8 with their bad characters escaped, anything else as its repr."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if value in _INT64 else str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return repr(value)


def _event_of(row: Row) -> dict[str, Any]:
    """The event an `events` row was written from, as a producer would send it again: its
    ids, type and time (epoch ms), the fields of its kind that are set, and its props."""
    event: dict[str, Any] = {
        "event_id": row.get("event_id"),
        "type": row.get("type"),
        "user_id": row.get("user_id"),
        "ts": row.get("ts_ms"),
    }
    for name in EVENT_TEXT_FIELDS:
        if row.get(name):
            event[name] = row[name]
    if row.get("order_id"):  # an order: its amount counts even when 0 (a free order)
        event["amount"] = row.get("amount")
    if row.get("seconds"):
        event["seconds"] = row["seconds"]
    props = row.get("props")
    if props:
        try:
            event["props"] = orjson.loads(props)
        except (orjson.JSONDecodeError, TypeError):
            event["props"] = props
    return event


def refused_row_letter(refused: RefusedRow) -> tuple[str, bytes | None, bytes]:
    """A row ClickHouse refused, as a record for the `dead-letters` topic: (the topic it is
    counted under: the event's topic for an `events` row, else the table; the key: the row's
    user or subject; the JSON value).

    The value has the usual fields (`reason` "sink_rejected", `field` the column the store
    named, `detail` its error, `topic`, `rejected_at`; no partition, offset or original bytes:
    the row is all that is left of them), the `table` and the `row` (datetimes as ISO text,
    Decimals as text), and for an `events` row the `event` rebuilt from the row."""
    row = refused.row
    is_event = refused.table == "events"
    topic = row.get("topic") if is_event else None
    key = row.get("user_id") or row.get("subject_id")
    record: dict[str, Any] = {
        "reason": SINK_REJECTED,
        "field": refused.column,
        "detail": refused.error,
        "topic": topic,
        "partition": None,
        "offset": None,
        "key": key,
        "value_b64": None,
        "rejected_at": datetime.now(tz=UTC).isoformat(),
        "table": refused.table,
        "row": row,
    }
    if is_event:
        record["event"] = _event_of(row)
    value = orjson.dumps(_jsonable(record))
    label = topic if isinstance(topic, str) and topic else refused.table
    key_bytes = _jsonable(key).encode() if isinstance(key, str) and key else None
    return label, key_bytes, value
