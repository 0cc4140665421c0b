"""From a user's state and derived scores to the published score document."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from pipeline.domain.profile import PurchaseOutlook, finite, mean_order_value
from pipeline.domain.rfm import RfmScore
from pipeline.domain.state import UserState
from schemas.scores import PurchaseBlock, RfmBlock, ScoreDocument, SentimentBlock

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def built(model: type[M], **values: Any) -> M:
    """A model from values already of its fields' types, every field given: what
    `model_construct` gives, without its per-field look-ups of aliases and defaults (a third
    of the cost of a score document). For models without aliases, extras, private
    attributes or post-init, which `tests/unit/test_scorer.py` checks."""
    instance = model.__new__(model)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", set(values))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


@dataclass(frozen=True)
class Derived:
    """Scores computed from the population models at `at_ms`."""

    at_ms: int
    horizon_days: float
    rfm: RfmScore | None = None
    churn_probability: float | None = None
    purchase: PurchaseOutlook | None = None
    engagement: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def rfm_block(score: RfmScore | None) -> RfmBlock | None:
    """The document's RFM block of a score (None: none)."""
    if score is None:
        return None
    return built(
        RfmBlock,
        recency_days=score.recency_days,
        frequency=score.frequency,
        monetary=score.monetary,
        r=score.r,
        f=score.f,
        m=score.m,
        segment=score.segment,
        rfm_class=score.rfm_class,
    )


def _purchase(derived: Derived) -> PurchaseBlock | None:
    outlook = derived.purchase
    if outlook is None:
        return None
    return built(
        PurchaseBlock,
        as_of=datetime.fromtimestamp(derived.at_ms / 1000.0, tz=UTC),
        horizon_days=derived.horizon_days,
        p_alive=finite(outlook.p_alive),
        expected_purchases=finite(outlook.expected_purchases),
        expected_order_value=finite(outlook.expected_order_value),
        clv=finite(outlook.clv),
        atv=finite(outlook.atv),
    )


def _sentiment(state: UserState) -> SentimentBlock | None:
    if state.sentiment_label is None or state.sentiment_at_ms is None:
        return None
    return built(
        SentimentBlock,
        label=state.sentiment_label,
        score=state.sentiment_score or 0.0,
        at=datetime.fromtimestamp(state.sentiment_at_ms / 1000.0, tz=UTC),
    )


def score_document(
    state: UserState, currency: str, now: datetime, derived: Derived | None = None
) -> ScoreDocument:
    """The document for `state`; `now` is processing time, the only wall-clock field.

    Built without validation (it is computed once per changed user, so its cost counts): every
    value here is already of its field's type, which the unit tests check by validating
    documents of every kind of user back."""
    return built(
        ScoreDocument,
        user_id=state.user_id,
        stage=state.stage.value if state.stage else None,
        stage_since=_at(state.stage_since_ms),
        order_count=state.order_count,
        free_order_count=state.free_orders,
        refund_count=state.refund_count,
        monetary=state.monetary_cents / 100,
        mean_order_value=mean_order_value(state.order_count, state.free_orders, state.paid_cents),
        currency=currency,
        interactions=state.interactions,
        reactivations=state.reactivations,
        first_paid_at=_at(state.first_paid_ms),
        last_paid_at=_at(state.last_paid_ms),
        last_interaction_at=_at(state.last_interaction_ms),
        last_event_at=_at(state.last_event_ms),
        rfm=rfm_block(derived.rfm) if derived else None,
        churn_probability=finite(derived.churn_probability) if derived else None,
        purchase=_purchase(derived) if derived else None,
        engagement=round(derived.engagement, 4) if derived else 0.0,
        sentiment=_sentiment(state),
        model_versions=dict(derived.versions) if derived else {},
        version=state.version,
        updated_at=now,
    )
