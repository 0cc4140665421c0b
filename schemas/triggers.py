"""A fired trigger, as published on `lifecycle-triggers` and served by the API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Trigger(BaseModel):
    """One rule firing for one subject (a user or a live room)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        description="Stable id: the same rule, subject and event time give the same id."
    )
    rule: str
    action: str = Field(description="The label of what the acting service should do.")
    subject_type: Literal["user", "room"]
    subject_id: str
    reason: dict[str, str | int | float | None] = Field(
        description="The values the rule tested, as they were when it fired."
    )
    at: datetime = Field(description="Event time of the change that fired it.")
    at_ms: int
    fired_at: datetime = Field(description="Processing time.")


class TriggerPage(BaseModel):
    """A page of the trigger feed, oldest first; `cursor` continues after its last item."""

    items: list[Trigger]
    cursor: str
