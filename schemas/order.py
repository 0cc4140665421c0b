"""Order lifecycle events (topic `order-events`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator

from schemas.common import EventBase

OrderType = Literal["order_created", "order_paid", "order_refunded"]
Channel = Literal["live", "mini_program", "community", "store", "other"]


class OrderEvent(EventBase):
    """An order created, paid or refunded; `amount` is a positive decimal in `currency`."""

    type: OrderType
    order_id: str = Field(min_length=1)
    amount: Decimal = Field(gt=0, max_digits=18, decimal_places=2, allow_inf_nan=False)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    items: list[dict[str, Any]] | int | None = None
    coupon_id: str | None = None
    channel: Channel = "other"
    room_id: str | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _amount_is_number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("amount must be a number")
        return value

    @property
    def amount_cents(self) -> int:
        return int(self.amount * 100)
