"""Live-stream room events (topic `live-events`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.common import EventBase

LiveType = Literal[
    "room_enter",
    "room_leave",
    "watch",
    "like",
    "comment",
    "share",
    "gift",
    "follow",
    "reservation",
    "product_click",
    "coupon_claim",
    "private_join",
]

# Per-type field that must be present.
_REQUIRED: dict[str, str] = {
    "watch": "seconds",
    "comment": "text",
    "gift": "value",
    "product_click": "product_id",
    "coupon_claim": "coupon_id",
}


class LiveEvent(EventBase):
    """A viewer's action in a live room during one broadcast (`session_id`)."""

    type: LiveType
    room_id: str = Field(min_length=1)
    session_id: str = Field(min_length=1)
    seconds: float | None = Field(default=None, gt=0, le=86_400, allow_inf_nan=False)
    text: str | None = Field(default=None, max_length=2000)
    value: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    product_id: str | None = None
    coupon_id: str | None = None

    @model_validator(mode="after")
    def _per_type_field(self) -> LiveEvent:
        field = _REQUIRED.get(self.type)
        if field is not None and getattr(self, field) is None:
            raise ValueError(f"{self.type} needs `{field}`")
        return self
