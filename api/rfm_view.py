"""RFM scores of a document against the latest version of the population the worker
published (`GET /v1/models` `rfm`), so a user's scores follow the population between the
user's own events."""

from __future__ import annotations

from typing import Any

from pipeline.domain.document import rfm_block
from pipeline.domain.rfm import RfmValues, score_on
from pipeline.domain.rfm_scale import RfmScale
from schemas.scores import ScoreDocument

DAY_S = 86_400


def rescored(document: ScoreDocument, models: dict[str, Any] | None) -> ScoreDocument | None:
    """The document with its RFM block scored against the published scale, or None when it
    is already (or cannot be: no scale yet, not a buyer)."""
    if models is None or not models.get("rfm") or document.rfm is None:
        return None
    scale = RfmScale.from_dict(models["rfm"])
    if document.model_versions.get("rfm") == f"rfm-{scale.version}":
        return None
    if document.last_paid_at is None or document.order_count < 1:
        return None
    last_paid_day = int(document.last_paid_at.timestamp() // DAY_S)
    monetary_cents = round(document.monetary * 100)
    values = RfmValues(last_paid_day, document.order_count, monetary_cents)
    as_of_day = last_paid_day + round(document.rfm.recency_days)
    block = rfm_block(score_on(scale, values, as_of_day))
    versions = {**document.model_versions, "rfm": f"rfm-{scale.version}"}
    return document.model_copy(update={"rfm": block, "model_versions": versions})
