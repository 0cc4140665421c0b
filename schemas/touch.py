"""Outreach events (topic `touch-events`): a push or message sent, opened, clicked."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import EventBase
from schemas.limits import ID_PATTERN, MAX_LABEL_CHARS, Id

TouchType = Literal["touch_sent", "touch_opened", "touch_clicked"]


class TouchEvent(EventBase):
    """A touch of a campaign; `trigger_id` links it to the trigger it answers."""

    type: TouchType
    campaign_id: Id
    channel: str = Field(min_length=1, max_length=MAX_LABEL_CHARS, pattern=ID_PATTERN)
    trigger_id: Id | None = None
