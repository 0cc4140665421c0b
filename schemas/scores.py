"""The score document: one per user, published to the compacted `user-scores` topic."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

StageName = Literal["potential", "new", "active", "silent", "churned"]


class ScoreDocument(BaseModel):
    """A user's current stage and scores, as of the last event applied."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    stage: StageName | None
    stage_since: datetime | None
    order_count: int
    refund_count: int
    monetary: float
    currency: str
    interactions: int
    reactivations: int
    first_paid_at: datetime | None
    last_paid_at: datetime | None
    last_interaction_at: datetime | None
    last_event_at: datetime | None
    version: int
    updated_at: datetime
