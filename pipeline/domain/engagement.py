"""Exponentially decayed engagement: watch time and interactions, on the event clock."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

# Points per interaction event type. One minute watched is one point (see `watch_amount`); the
# other weights are relative to it. `watch` scores through its seconds, not here; outreach that
# the user did not act on (`touch_sent`, `touch_opened`) and leaving or refunding score nothing.
INTERACTION_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        # live room
        "room_enter": 0.5,
        "room_leave": 0.0,
        "watch": 0.0,
        "like": 0.5,
        "comment": 2.0,
        "share": 3.0,
        "gift": 3.0,
        "follow": 3.0,
        "reservation": 2.0,
        "product_click": 2.0,
        "coupon_claim": 2.0,
        "private_join": 5.0,
        # community and private chat
        "message": 1.0,
        "reply": 1.0,
        "join_group": 3.0,
        "leave_group": 0.0,
        # orders
        "order_created": 2.0,
        "order_paid": 5.0,
        "order_refunded": 0.0,
        # outreach
        "touch_sent": 0.0,
        "touch_opened": 0.0,
        "touch_clicked": 1.0,
    }
)

SECONDS_PER_POINT = 60.0


def watch_amount(seconds: float) -> float:
    """Points for watching `seconds`: one point per minute; nothing for a bad figure."""
    if not math.isfinite(seconds) or seconds <= 0:
        return 0.0
    return seconds / SECONDS_PER_POINT


def interaction_amount(event_type: str) -> float:
    """Points for one event of `event_type` (0 for an unknown type); see INTERACTION_WEIGHTS."""
    return INTERACTION_WEIGHTS.get(event_type, 0.0)


def _decay(elapsed_ms: int, half_life_ms: int) -> float:
    """The factor 2^(-elapsed / half-life) for a non-negative elapsed time."""
    return math.pow(0.5, elapsed_ms / half_life_ms)


def _check(amount: float, half_life_ms: int) -> None:
    if half_life_ms <= 0:
        raise ValueError(f"half_life_ms must be positive, got {half_life_ms}")
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"amount must be finite and non-negative, got {amount}")


@dataclass(slots=True)
class Engagement:
    """A decayed sum of points, referenced to the latest event time added (`at_ms`)."""

    value: float = 0.0
    at_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "at_ms": self.at_ms}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Engagement:
        at = data.get("at_ms")
        return cls(value=float(data.get("value") or 0.0), at_ms=None if at is None else int(at))


def add(e: Engagement, ts_ms: int, amount: float, half_life_ms: int) -> None:
    """Add `amount` points earned at `ts_ms`, in any order of arrival.

    The result is sum(amount_i * 2^(-(T - t_i) / half_life)) with T the latest time added: a newer
    event decays the kept value forward to its time, a late one is added already decayed.
    """
    _check(amount, half_life_ms)
    if e.at_ms is None:
        e.value += amount
        e.at_ms = ts_ms
    elif ts_ms >= e.at_ms:
        e.value = e.value * _decay(ts_ms - e.at_ms, half_life_ms) + amount
        e.at_ms = ts_ms
    else:
        e.value += amount * _decay(e.at_ms - ts_ms, half_life_ms)


def value_at(e: Engagement, ts_ms: int, half_life_ms: int) -> float:
    """The value decayed to `ts_ms`; a time before `at_ms` gives the value at `at_ms`."""
    if half_life_ms <= 0:
        raise ValueError(f"half_life_ms must be positive, got {half_life_ms}")
    if e.at_ms is None:
        return 0.0
    if ts_ms <= e.at_ms:
        return e.value
    return e.value * _decay(ts_ms - e.at_ms, half_life_ms)
