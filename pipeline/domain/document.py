"""From a user's state to the published score document."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.domain.state import UserState
from schemas.scores import ScoreDocument


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def score_document(state: UserState, currency: str, now: datetime) -> ScoreDocument:
    """The document for `state`; `now` is processing time, the only wall-clock field."""
    return ScoreDocument(
        user_id=state.user_id,
        stage=state.stage.value if state.stage else None,
        stage_since=_at(state.stage_since_ms),
        order_count=state.order_count,
        refund_count=state.refund_count,
        monetary=state.monetary_cents / 100,
        currency=currency,
        interactions=state.interactions,
        reactivations=state.reactivations,
        first_paid_at=_at(state.first_paid_ms),
        last_paid_at=_at(state.last_paid_ms),
        last_interaction_at=_at(state.last_interaction_ms),
        last_event_at=_at(state.last_event_ms),
        version=state.version,
        updated_at=now,
    )
