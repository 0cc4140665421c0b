"""The per-user ledger of recent orders: an order paid twice counts once, a refund is capped
at what its order paid, and monetary value is never negative.

The ledger lives in the user's state record (`UserState.orders`), next to the event ids, and
is bounded like them: orders paid within `horizon_ms` of the user's latest event, at most
`max_orders` of them. A refund of an order that is not in it cannot be capped: it is held
until its payment comes (`pipeline.held_refunds`), or refused with `unknown_order` when the
payment cannot come on time (never paid, or older than the ledger).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pipeline.domain.facts import Fact
    from pipeline.domain.state import UserState

PAID = "order_paid"
REFUNDED = "order_refunded"
ORDER_TYPES = frozenset({PAID, REFUNDED})  # the facts the order ledger takes
UNKNOWN_ORDER = "unknown_order"
CONFLICTING_ORDER = "conflicting_order"

# A ledger entry: [cents paid, cents refunded so far, event time of the payment (ms)].
PAID_AT, REFUNDED_AT, TS_AT = 0, 1, 2

Verdict = Literal["apply", "duplicate_order", "unpaid"]


class OrderRefused(ValueError):
    """An order event that cannot mean what it says: `reason` is `unknown_order` or
    `conflicting_order`, `detail` a sentence for the producer."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class OrderLimits:
    """How much of the order history the ledger keeps per user."""

    horizon_ms: int = 180 * 86_400_000
    max_orders: int = 100


def check(state: UserState, fact: Fact) -> Verdict:
    """What to do with an order event before it touches the state.

    Returns "apply"; "duplicate_order" for a payment of an order already paid with the same
    amount (a retry under a new event id: it changes nothing); "unpaid" for a refund of an
    order the ledger does not hold (its payment may still come). Raises OrderRefused for a
    payment of an order already paid with another amount (`conflicting_order`) and for a
    refund dated before its order's payment (`unknown_order`).
    """
    if fact.type not in ORDER_TYPES or fact.order_id is None:
        return "apply"
    entry = state.orders.get(fact.order_id)
    if fact.type == PAID:
        if entry is None:
            return "apply"
        if entry[PAID_AT] == fact.amount_cents:
            return "duplicate_order"
        raise OrderRefused(
            CONFLICTING_ORDER,
            f"order {fact.order_id} was paid already with {entry[PAID_AT] / 100:.2f} in the "
            f"base currency; this payment says {fact.amount_cents / 100:.2f}",
        )
    if entry is None:
        return "unpaid"
    if fact.ts_ms < entry[TS_AT]:
        # Whatever order the two arrive in: a refund dated before its payment refunds an
        # order that was not paid yet at its time.
        raise OrderRefused(
            UNKNOWN_ORDER,
            f"refund of order {fact.order_id} is dated before the order's payment "
            f"({_iso(fact.ts_ms)} < {_iso(entry[TS_AT])}, event time)",
        )
    return "apply"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def refund_amount(state: UserState, fact: Fact) -> int:
    """Cents of a checked refund that count: at most what its order paid and was not refunded
    yet, so monetary value never goes below zero."""
    entry = state.orders[fact.order_id] if fact.order_id is not None else None
    if entry is None:
        return 0
    return max(0, min(fact.amount_cents, entry[PAID_AT] - entry[REFUNDED_AT]))


def record(state: UserState, fact: Fact, counted_cents: int, limits: OrderLimits) -> None:
    """Enter a checked payment, or a refund's counted cents, in the ledger; drop entries
    older than the horizon before the user's latest event, then the oldest beyond the cap."""
    if fact.order_id is None:
        return
    orders = state.orders
    if fact.type == PAID:
        orders[fact.order_id] = [fact.amount_cents, 0, fact.ts_ms]
    elif fact.type == REFUNDED:
        orders[fact.order_id][REFUNDED_AT] += counted_cents
    else:
        return
    newest = state.last_event_ms if state.last_event_ms is not None else fact.ts_ms
    stale = [o for o, entry in orders.items() if entry[TS_AT] < newest - limits.horizon_ms]
    for order_id in stale:
        del orders[order_id]
    if len(orders) > limits.max_orders:
        by_age = sorted(orders, key=lambda o: orders[o][TS_AT])
        for order_id in by_age[: len(orders) - limits.max_orders]:
            del orders[order_id]
