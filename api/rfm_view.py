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
    """The document with its RFM block scored against the published scale (a user who is
    not a buyer has none, against any scale), or None when it already is (or there is no
    scale yet)."""
    if models is None or not models.get("rfm"):
        return None
    scale = RfmScale.from_dict(models["rfm"])
    version = f"rfm-{scale.version}"
    if document.model_versions.get("rfm") == version:
        return None
    versions = {**document.model_versions, "rfm": version}
    if document.last_paid_at is None or document.order_count < 1:
        return document.model_copy(update={"rfm": None, "model_versions": versions})
    last_paid_day = int(document.last_paid_at.timestamp() // DAY_S)
    monetary_cents = round(document.monetary * 100)
    values = RfmValues(last_paid_day, document.order_count, monetary_cents)
    if document.rfm is not None:
        as_of_day = last_paid_day + round(document.rfm.recency_days)
    else:  # written before the population had enough buyers: at the document's own time
        own = document.purchase.as_of if document.purchase is not None else None
        when = own or document.last_event_at or document.updated_at
        as_of_day = int(when.timestamp() // DAY_S)
    block = rfm_block(score_on(scale, values, as_of_day))
    return document.model_copy(update={"rfm": block, "model_versions": versions})
