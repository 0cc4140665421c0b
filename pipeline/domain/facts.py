"""From a validated event to the domain's Fact, with money in the base currency."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import orjson

from pipeline.domain.state import Fact, payload_digest
from schemas.events import AnyEvent
from schemas.limits import MAX_BASE_AMOUNT
from schemas.order import OrderEvent

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
