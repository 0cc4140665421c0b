"""Raw bytes to a typed event, or a rejection that says which field and what was wrong.

Used by the pipeline (rejections go to dead-letters) and by producers before they send.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, get_args

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.common import unbounded_event_time
from schemas.events import EVENT_MODELS, AnyEvent, Kind
from schemas.limits import (
    DEFAULT_EARLIEST_EVENT_TIME,
    ID_ALPHABET,
    ID_MAX_LENGTH,
    MAX_BASE_AMOUNT,
)

# Reasons, machine-readable; the dead-letter record and the metric label carry them.
TOO_LARGE = "too_large"
NOT_UTF8 = "not_utf8"
NOT_JSON = "not_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
EMPTY_FIELD = "empty_field"
UNKNOWN_TYPE = "unknown_type"
UNKNOWN_FIELD = "unknown_field"
WRONG_TYPE = "wrong_type"
INVALID_AMOUNT = "invalid_amount"
UNKNOWN_CURRENCY = "unknown_currency"
INVALID_TIMESTAMP = "invalid_timestamp"
FUTURE_TIMESTAMP = "future_timestamp"
INVALID_FIELD = "invalid_field"
# Reasons found against the user's state, after validation.
CONFLICTING_DUPLICATE = "conflicting_duplicate"  # an event_id reused with another payload
UNKNOWN_ORDER = "unknown_order"  # a refund of an order this user was never seen paying
CONFLICTING_ORDER = "conflicting_order"  # an order paid again with another amount or currency
SINK_REJECTED = "sink_rejected"  # valid, but the store refused its row
# Faults of ours, not of the record.
INTERNAL_ERROR = "internal_error"
UNKNOWN_TOPIC = "unknown_topic"
# Every reason a record of an input topic can be dead-lettered for (the metric's labels).
REASONS = (
    TOO_LARGE, NOT_UTF8, NOT_JSON, NOT_AN_OBJECT, MISSING_FIELD, EMPTY_FIELD, UNKNOWN_TYPE,
    UNKNOWN_FIELD, WRONG_TYPE, INVALID_AMOUNT, UNKNOWN_CURRENCY, INVALID_TIMESTAMP,
    FUTURE_TIMESTAMP, INVALID_FIELD, CONFLICTING_DUPLICATE, UNKNOWN_ORDER, CONFLICTING_ORDER,
    INTERNAL_ERROR, UNKNOWN_TOPIC,
)  # fmt: skip

_WRONG_TYPE_ERRORS = frozenset(
    {
        "string_type", "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing",
        "decimal_type", "decimal_parsing", "dict_type", "list_type", "bool_type", "model_type",
    }
)  # fmt: skip
_NEEDS = re.compile(r"needs `(\w+)`")
_TYPES: dict[Kind, frozenset[str]] = {
    kind: frozenset(get_args(model.model_fields["type"].annotation))
    for kind, model in EVENT_MODELS.items()
}


def kind_of_type(event_type: object) -> Kind | None:
    """The kind of events (and so the input topic) an event `type` belongs to; None for a
    type no kind has."""
    for kind, types in _TYPES.items():
        if event_type in types:
            return kind
    return None


class Rejection(ValueError):
    """Why a message cannot be scored: a reason, the field at fault (if one), and a message."""

    def __init__(self, reason: str, field: str | None, detail: str) -> None:
        super().__init__(reason, field, detail)
        self.reason = reason
        self.field = field
        self.detail = detail

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"{self.reason}{where}: {self.detail}"


def _classify(error: ErrorDetails) -> Rejection:
    loc = ".".join(str(part) for part in error["loc"]) or None
    kind = error["type"]
    message = error["msg"]
    top = str(error["loc"][0]) if error["loc"] else ""
    if kind == "missing":
        return Rejection(MISSING_FIELD, loc, "required field is missing")
    needed = _NEEDS.search(message) if loc is None else None
    if needed:  # a per-type field, checked by the model as a whole
        return Rejection(MISSING_FIELD, needed.group(1), message)
    if kind == "extra_forbidden":
        return Rejection(UNKNOWN_FIELD, loc, "field is not part of the schema (use `props`)")
    blank = isinstance(error.get("input"), str) and not str(error.get("input")).strip()
    if top in ("event_id", "user_id") and (kind == "string_too_short" or blank):
        return Rejection(EMPTY_FIELD, loc, "must not be empty")
    if kind == "string_pattern_mismatch" and top.endswith("_id"):
        return Rejection(INVALID_FIELD, loc, f"an id is 1 to {ID_MAX_LENGTH} of {ID_ALPHABET}")
    if top == "ts":
        return Rejection(INVALID_TIMESTAMP, loc, message)
    if top == "amount" or kind == "invalid_amount":
        return Rejection(INVALID_AMOUNT, "amount", message)
    if kind in _WRONG_TYPE_ERRORS:
        return Rejection(WRONG_TYPE, loc, message)
    return Rejection(INVALID_FIELD, loc, message)


def _seconds_hint(value: Any, earliest_ms: int, latest_ms: int) -> str:
    """A hint when an epoch-milliseconds `ts` reads right as epoch seconds."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    if earliest_ms <= value * 1000 <= latest_ms:
        as_seconds = datetime.fromtimestamp(value, tz=UTC).isoformat()
        return f" (it looks like epoch seconds, {as_seconds}; ts is epoch milliseconds)"
    return ""


def decode_object(raw: bytes) -> dict[str, Any]:
    """Bytes to a JSON object, or a Rejection for encoding, syntax or shape."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise Rejection(NOT_UTF8, None, f"invalid UTF-8 at byte {bad.start}") from exc
        raise Rejection(NOT_JSON, None, str(exc)) from exc
    if not isinstance(value, dict):
        raise Rejection(NOT_AN_OBJECT, None, f"expected a JSON object, got {type(value).__name__}")
    return value


class Validator:
    """Checks one message of a topic kind against the contract and the configured limits."""

    def __init__(
        self,
        currencies: Collection[str],
        max_bytes: int = 64 * 1024,
        future_margin_ms: int = 5 * 60 * 1000,
        earliest: datetime = DEFAULT_EARLIEST_EVENT_TIME,
    ) -> None:
        self.currencies = frozenset(currencies)
        # With rates (a mapping of currency to rate), the base-currency bound is checked too.
        self.rates: Mapping[str, float] = currencies if isinstance(currencies, Mapping) else {}
        self.max_bytes = max_bytes
        self.future_margin_ms = future_margin_ms
        self.earliest = earliest
        self.earliest_ms = int(earliest.timestamp() * 1000)

    def decode(self, raw: bytes) -> dict[str, Any]:
        """Bytes to a JSON object, or a Rejection for size, encoding, syntax or shape."""
        if len(raw) > self.max_bytes:
            raise Rejection(TOO_LARGE, None, f"{len(raw)} bytes, limit {self.max_bytes}")
        return decode_object(raw)

    def check(self, kind: Kind, data: dict[str, Any], now_ms: int) -> AnyEvent:
        """A decoded object to a typed event, or a Rejection naming the field."""
        event_type = data.get("type")
        if event_type is None:
            raise Rejection(MISSING_FIELD, "type", "required field is missing")
        if not isinstance(event_type, str) or event_type not in _TYPES[kind]:
            known = ", ".join(sorted(_TYPES[kind]))
            raise Rejection(UNKNOWN_TYPE, "type", f"{event_type!r} is not one of: {known}")
        try:
            event = EVENT_MODELS[kind].model_validate(data)
        except ValidationError as exc:
            rejection = _classify(exc.errors()[0])
            if rejection.reason == INVALID_TIMESTAMP:
                rejection = self._time_problem(data.get("ts"), rejection, now_ms)
            raise rejection from exc
        ts_ms = event.ts_ms
        if ts_ms > now_ms + self.future_margin_ms:
            ahead = (ts_ms - now_ms) / 1000
            raise Rejection(FUTURE_TIMESTAMP, "ts", f"{ahead:.0f}s in the future")
        if ts_ms < self.earliest_ms:
            hint = _seconds_hint(data.get("ts"), self.earliest_ms, now_ms + self.future_margin_ms)
            raise Rejection(
                INVALID_TIMESTAMP,
                "ts",
                f"{event.ts.isoformat()} is before the earliest event time "
                f"{self.earliest.isoformat()}{hint}",
            )
        currency = event.__dict__.get("currency")  # (a missing attribute is slow on a model)
        if currency is not None:
            if currency not in self.currencies:
                known = ", ".join(sorted(self.currencies))
                raise Rejection(UNKNOWN_CURRENCY, "currency", f"{currency} is not one of: {known}")
            rate = self.rates.get(currency)
            amount = event.__dict__["amount"]
            if rate is not None and amount * Decimal(str(rate)) > MAX_BASE_AMOUNT:
                base = (amount * Decimal(str(rate))).quantize(Decimal("0.01"))
                raise Rejection(
                    INVALID_AMOUNT,
                    "amount",
                    f"{amount} {currency} is {base} in the base currency, above the bound of "
                    f"{MAX_BASE_AMOUNT}",
                )
        return event

    def _time_problem(self, ts: Any, rejection: Rejection, now_ms: int) -> Rejection:
        """A time beyond what the stores hold that is ahead of now is `future_timestamp`;
        a number that reads right as epoch seconds gets a hint."""
        try:
            parsed = unbounded_event_time(ts)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.timestamp() * 1000 > now_ms + self.future_margin_ms:
            ahead = parsed.timestamp() - now_ms / 1000
            return Rejection(FUTURE_TIMESTAMP, "ts", f"{ahead:.0f}s in the future")
        hint = _seconds_hint(ts, self.earliest_ms, now_ms + self.future_margin_ms)
        return Rejection(INVALID_TIMESTAMP, "ts", rejection.detail + hint)

    def validate(self, kind: Kind, raw: bytes, now_ms: int) -> AnyEvent:
        return self.check(kind, self.decode(raw), now_ms)
