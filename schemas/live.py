"""Live-stream room events (topic `live-events`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.common import EventBase
from schemas.limits import MAX_COMMENT_CHARS, MAX_GIFT_VALUE, MAX_WATCH_SECONDS, Id

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
    room_id: Id
    session_id: Id
    seconds: float | None = Field(default=None, gt=0, le=MAX_WATCH_SECONDS, allow_inf_nan=False)
    text: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)
    value: float | None = Field(default=None, ge=0, le=MAX_GIFT_VALUE, allow_inf_nan=False)
    product_id: Id | None = None
    coupon_id: Id | None = None

    @model_validator(mode="after")
    def _per_type_field(self) -> LiveEvent:
        field = _REQUIRED.get(self.type)
        if field is not None and getattr(self, field) is None:
            raise ValueError(f"{self.type} needs `{field}`")
        return self
