"""Outreach events (topic `touch-events`): a push or message sent, opened, clicked."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import EventBase

TouchType = Literal["touch_sent", "touch_opened", "touch_clicked"]


class TouchEvent(EventBase):
    """A touch of a campaign; `trigger_id` links it to the trigger it answers."""

    type: TouchType
    campaign_id: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    trigger_id: str | None = None
