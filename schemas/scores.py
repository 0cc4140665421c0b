"""The score document: one per user, published to the compacted `user-scores` topic."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

StageName = Literal["potential", "new", "active", "silent", "churned"]


class RfmBlock(BaseModel):
    """Recency, frequency, monetary, their 1-5 scores against the population, segment, class."""

    model_config = ConfigDict(frozen=True)

    recency_days: float
    frequency: int
    monetary: float
    r: int
    f: int
    m: int
    segment: str
    rfm_class: Literal["A", "B", "C"]


class PurchaseBlock(BaseModel):
    """BG/NBD and Gamma-Gamma outlook at `as_of`, over `horizon_days`."""

    model_config = ConfigDict(frozen=True)

    as_of: datetime
    horizon_days: float
    p_alive: float | None
    expected_purchases: float | None
    expected_order_value: float | None
    clv: float | None
    atv: float | None


class SentimentBlock(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: Literal["positive", "neutral", "negative"]
    score: float
    at: datetime


class ScoreDocument(BaseModel):
    """A user's current stage and scores, as of the last event applied."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    stage: StageName | None
    stage_since: datetime | None
    order_count: int
    free_order_count: int = 0  # paid orders of amount 0: counted in frequency, not in value
    refund_count: int
    monetary: float
    mean_order_value: float | None = None  # over the orders with a value
    currency: str
    interactions: int
    reactivations: int
    first_paid_at: datetime | None
    last_paid_at: datetime | None
    last_interaction_at: datetime | None
    last_event_at: datetime | None
    rfm: RfmBlock | None = None
    churn_probability: float | None = None
    purchase: PurchaseBlock | None = None
    engagement: float = 0.0
    sentiment: SentimentBlock | None = None
    model_versions: dict[str, str] = {}
    version: int
    updated_at: datetime
