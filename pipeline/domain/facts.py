"""From a validated event to the domain's Fact, with money in the base currency."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from pipeline.domain.state import Fact
from schemas.events import AnyEvent
from schemas.order import OrderEvent


class UnknownCurrency(ValueError):
    """An order in a currency with no configured rate."""


def to_base_cents(amount: Decimal, currency: str, fx_rates: dict[str, float]) -> int:
    """Amount in base-currency cents, rounded half to even."""
    rate = fx_rates.get(currency)
    if rate is None:
        raise UnknownCurrency(
            f"currency {currency} has no rate (known: {', '.join(sorted(fx_rates))})"
        )
    cents = amount * Decimal(str(rate)) * 100
    return int(cents.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def to_fact(event: AnyEvent, fx_rates: dict[str, float]) -> Fact:
    amount = 0
    if isinstance(event, OrderEvent):
        amount = to_base_cents(event.amount, event.currency, fx_rates)
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
    )
