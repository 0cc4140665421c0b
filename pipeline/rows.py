"""ClickHouse rows for events, stage transitions and score documents."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel

from pipeline.domain.facts import Fact
from pipeline.domain.history import Transition
from pipeline.domain.sentiment import TEXT_TYPES, classify
from schemas.events import AnyEvent
from schemas.scores import ScoreDocument

# Columns of an `events` row that carry an event's own text fields ("" when absent).
EVENT_TEXT_FIELDS = (
    "room_id",
    "session_id",
    "group_id",
    "order_id",
    "currency",
    "channel",
    "campaign_id",
    "trigger_id",
    "text",
)


_ZERO = Decimal(0)


def event_row(topic: str, event: AnyEvent, fact: Fact, received_at: datetime) -> dict[str, Any]:
    fields = event.__dict__
    row: dict[str, Any] = {
        "event_id": event.event_id,
        "topic": topic,
        "type": event.type,
        "user_id": event.user_id,
        "ts": event.ts,
        "ts_ms": fact.ts_ms,
        "received_at": received_at,
        "amount": fields.get("amount") or _ZERO,
        "amount_base": Decimal(fact.amount_cents).scaleb(-2) if fact.amount_cents else _ZERO,
        "seconds": float(fields.get("seconds") or 0.0),
        "props": orjson.dumps(event.props).decode() if event.props else "",
    }
    for name in EVENT_TEXT_FIELDS:
        row[name] = fields.get(name) or ""
    text = fact.text  # `sentiment`: positive, neutral, negative; "" for events with no text
    row["sentiment"] = classify(text).label if text and fact.type in TEXT_TYPES else ""
    return row


def transition_row(
    transition: Transition, recorded_at: datetime, version: int = 0
) -> dict[str, Any]:
    """A `stage_transitions` row; a retracted transition is a row with `valid` 0 at a later
    `version` of the user, which replaces the earlier row of the same transition."""
    return {
        "user_id": transition.user_id,
        "from_stage": transition.from_stage.value if transition.from_stage else "",
        "to_stage": transition.to_stage.value,
        "at": datetime.fromtimestamp(transition.at_ms / 1000, tz=UTC),
        "at_ms": transition.at_ms,
        "reactivation": int(transition.is_reactivation),
        "recorded_at": recorded_at,
        "version": version,
        "valid": 0 if transition.retracted else 1,
    }


_SCORE_FIELDS = (
    "user_id", "stage_since", "order_count", "refund_count", "currency", "interactions",
    "reactivations", "first_paid_at", "last_paid_at", "last_interaction_at", "last_event_at",
    "churn_probability", "engagement", "version", "updated_at",
)  # fmt: skip
_NO_PURCHASE = dict.fromkeys(  # the columns of the purchase block, empty
    ("p_alive", "expected_purchases", "expected_order_value", "clv", "atv")
)
_NO_RFM = {"r": 0, "f": 0, "m": 0, "segment": "", "rfm_class": ""}  # of the RFM block


def _flatten(row: dict[str, Any], block: BaseModel | None, empty: dict[str, Any]) -> None:
    """A block's fields (those of `empty`) into `row`; `empty`'s values for no block."""
    if block is None:
        row.update(empty)
    else:
        values = block.__dict__
        row.update((name, values[name]) for name in empty)


def score_row(doc: ScoreDocument) -> dict[str, Any]:
    """The document flattened to the `user_scores` columns."""
    fields = doc.__dict__  # (the model's values: one look-up each, no attribute protocol)
    row: dict[str, Any] = {name: fields[name] for name in _SCORE_FIELDS}
    row["stage"] = fields["stage"] or ""
    row["monetary"] = Decimal(str(fields["monetary"]))
    _flatten(row, fields["rfm"], _NO_RFM)
    _flatten(row, fields["purchase"], _NO_PURCHASE)
    sentiment = fields["sentiment"]
    row["sentiment"] = sentiment.label if sentiment is not None else ""
    return row
