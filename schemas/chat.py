"""Community and private chat events (topic `chat-events`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.common import EventBase
from schemas.limits import MAX_MESSAGE_CHARS, Id

ChatType = Literal["message", "reply", "join_group", "leave_group"]


class ChatEvent(EventBase):
    """A chat action; `group_id` is absent for one-to-one chats."""

    type: ChatType
    group_id: Id | None = None
    text: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)

    @model_validator(mode="after")
    def _per_type_field(self) -> ChatEvent:
        if self.type in ("message", "reply") and self.text is None:
            raise ValueError(f"{self.type} needs `text`")
        if self.type in ("join_group", "leave_group") and not self.group_id:
            raise ValueError(f"{self.type} needs `group_id`")
        return self
