"""Order lifecycle events (topic `order-events`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from babel.numbers import get_currency_precision
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from schemas.common import EventBase
from schemas.limits import MAX_AMOUNT, MAX_ITEMS, Id

OrderType = Literal["order_created", "order_paid", "order_refunded"]
Channel = Literal["live", "mini_program", "community", "store", "other"]


def minor_units(currency: str) -> int:
    """Digits after the decimal point of a currency (ISO 4217, from CLDR through Babel):
    2 for CNY and USD, 0 for JPY and KRW, 3 for KWD."""
    return int(get_currency_precision(currency))


class OrderEvent(EventBase):
    """An order created, paid or refunded.

    `amount` is a decimal in `currency`, from 0 (a free order: a 0-yuan live draw, a 100%
    coupon) to 10^12, with no more fractional digits than the currency has (ISO 4217 minor
    units: 1.50 JPY and 0.01 KRW are invalid). Raises ValidationError otherwise.
    """

    type: OrderType
    order_id: Id
    amount: Decimal = Field(ge=0, le=MAX_AMOUNT, max_digits=18, allow_inf_nan=False)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    items: (
        Annotated[list[dict[str, Any]], Field(max_length=MAX_ITEMS)]
        | Annotated[int, Field(ge=0, le=MAX_ITEMS)]
        | None
    ) = None
    coupon_id: Id | None = None
    channel: Channel = "other"
    room_id: Id | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _amount_is_number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("amount must be a number")
        return value

    @model_validator(mode="after")
    def _minor_units(self) -> OrderEvent:
        digits = minor_units(self.currency)
        if self.amount != self.amount.quantize(Decimal(1).scaleb(-digits)):
            raise PydanticCustomError(
                "invalid_amount",
                "amount {amount} has more fractional digits than {currency} has minor units "
                "({digits})",
                {"amount": str(self.amount), "currency": self.currency, "digits": digits},
            )
        return self

    @property
    def amount_cents(self) -> int:
        """The amount in hundredths of its currency (for display and tests)."""
        return int(self.amount * 100)
