"""The domain's Fact of a validated event (money in the base currency), and the digests of
its id and payload that a user's state remembers."""

from __future__ import annotations

import hashlib
import zlib
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

import orjson

from schemas.events import AnyEvent
from schemas.limits import MAX_BASE_AMOUNT
from schemas.order import OrderEvent

NOT_INTERACTIONS = frozenset({"touch_sent", "touch_opened"})


class Fact(NamedTuple):
    """What the domain needs of a validated event, free of any transport type (a named
    tuple: one is made for every event, at a fifth of a frozen dataclass's cost)."""

    user_id: str
    type: str
    ts_ms: int
    amount_cents: int = 0  # in the base currency, for orders
    seconds: float = 0.0  # watched, for `watch`
    text: str | None = None  # of a comment or chat message
    room_id: str | None = None  # of a live event
    session_id: str | None = None  # of a live event: one broadcast
    order_id: str | None = None  # of an order event
    payload: int = 0  # payload_digest of the event (0: unknown), to tell a retry from a reuse

    @property
    def is_interaction(self) -> bool:
        return self.type not in NOT_INTERACTIONS


def event_digest(event_id: str) -> int:
    """A stable 64-bit digest of an event id (the same in every process)."""
    return int.from_bytes(
        hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big", signed=True
    )


# A remembered event id maps to its event time (ms, the low 42 bits: up to the year 2109)
# and a 20-bit digest of its payload above them, in one int that stays within int64.
_TS_BITS = 42
SEEN_TIME_MASK = (1 << _TS_BITS) - 1  # the event time's bits of a remembered id
_PAYLOAD_BITS = 20


def payload_digest(canonical: bytes) -> int:
    """A stable digest of an event's payload, 1 to 2^20 - 1 (0 means unknown): a resend of
    the same event gives the same digest, a reused id with another payload another one
    (with probability 1 - 2^-20)."""
    return (zlib.crc32(canonical) % ((1 << _PAYLOAD_BITS) - 1)) + 1


def packed_seen(ts_ms: int, payload: int) -> int:
    """A remembered event id's event time (ms) and payload digest in one int."""
    return (payload << _TS_BITS) | (ts_ms & SEEN_TIME_MASK)


def seen_at(packed: int) -> int:
    """Event time (ms) of a remembered event id."""
    return packed & SEEN_TIME_MASK


def seen_payload(packed: int) -> int:
    """Payload digest of a remembered event id (0: remembered before digests were kept)."""
    return packed >> _TS_BITS


_MAX_BASE_CENTS = int(MAX_BASE_AMOUNT * 100)


class UnknownCurrency(ValueError):
    """An order in a currency with no configured rate."""


class AmountOutOfRange(ValueError):
    """An order worth more than the contract's bound once converted to the base currency."""


def to_base_cents(amount: Decimal, currency: str, fx_rates: dict[str, float]) -> int:
    """Amount in base-currency cents, rounded half to even; raises UnknownCurrency."""
    rate = fx_rates.get(currency)
    if rate is None:
        raise UnknownCurrency(
            f"currency {currency} has no rate (known: {', '.join(sorted(fx_rates))})"
        )
    cents = amount * Decimal(str(rate)) * 100
    return int(cents.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


_NOT_PROPS = {"props"}
_NOT_PROPS_OR_AMOUNT = {"props", "amount"}


def canonical_payload(event: AnyEvent) -> bytes:
    """The event as the pipeline understood it, whatever the producer's spelling (key order,
    `ts` as text or milliseconds, `"10.0"` or `10`): equal for a resend of the same event.

    The bytes of `model_dump_json`, from the model's serializer directly (the method's own
    Python steps cost a third as much again, on every event)."""
    serializer = event.__pydantic_serializer__
    if isinstance(event, OrderEvent):  # "100.0" and "100.00" are one amount
        body = serializer.to_json(event, exclude=_NOT_PROPS_OR_AMOUNT)
        body += format(event.amount.normalize(), "f").encode()
    else:
        body = serializer.to_json(event, exclude=_NOT_PROPS)
    if event.props:
        body += orjson.dumps(event.props, option=orjson.OPT_SORT_KEYS)
    return body


def to_fact(event: AnyEvent, fx_rates: dict[str, float]) -> Fact:
    """The domain's view of a validated event; raises UnknownCurrency, and AmountOutOfRange
    for an order worth more than 10^12 in the base currency."""
    amount = 0
    order_id = None
    if isinstance(event, OrderEvent):
        amount = to_base_cents(event.amount, event.currency, fx_rates)
        if amount > _MAX_BASE_CENTS:
            raise AmountOutOfRange(
                f"{event.amount} {event.currency} is {Decimal(amount).scaleb(-2)} in the base "
                f"currency, above the bound of {MAX_BASE_AMOUNT}"
            )
        order_id = event.order_id
    fields = event.__dict__
    return Fact(
        user_id=event.user_id,
        type=event.type,
        ts_ms=event.ts_ms,
        amount_cents=amount,
        seconds=float(fields.get("seconds") or 0.0),
        text=fields.get("text"),
        room_id=fields.get("room_id"),
        session_id=fields.get("session_id"),
        order_id=order_id,
        payload=payload_digest(canonical_payload(event)),
    )
