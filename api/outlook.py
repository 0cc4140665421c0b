"""The purchase outlook of a score document at any `as_of` and horizon, from the fitted models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.domain import btyd, spend
from pipeline.domain.profile import finite
from schemas.scores import PurchaseBlock, ScoreDocument

DAY_S = 86_400.0


def outlook_at(
    document: ScoreDocument, models: dict[str, Any] | None, as_of: datetime, horizon_days: float
) -> PurchaseBlock | None:
    """BG/NBD and Gamma-Gamma figures at `as_of`; None for a non-buyer or before any fit."""
    if models is None or not models.get("btyd") or document.first_paid_at is None:
        return None
    if document.last_paid_at is None or as_of < document.first_paid_at:
        return None
    bg = btyd.BgNbdParams(**models["btyd"])
    x = float(document.order_count - 1)
    t_x = (document.last_paid_at - document.first_paid_at).total_seconds() / DAY_S
    age = max((as_of - document.first_paid_at).total_seconds() / DAY_S, t_x)
    expected = float(btyd.expected_purchases(bg, horizon_days, x, t_x, age))
    year = float(btyd.expected_purchases(bg, 365.0, x, t_x, age))
    value = clv = atv = None
    if models.get("gamma_gamma") and document.mean_order_value is not None:
        gg = spend.GammaGammaParams(**models["gamma_gamma"])
        valued_x = float(max(document.order_count - document.free_order_count - 1, 0))
        value = float(spend.expected_order_value(gg, valued_x, document.mean_order_value))
        clv, atv = expected * value, year * value
    return PurchaseBlock(
        as_of=as_of,
        horizon_days=horizon_days,
        p_alive=finite(float(btyd.p_alive(bg, x, t_x, age))),
        expected_purchases=finite(expected),
        expected_order_value=finite(value),
        clv=finite(clv),
        atv=finite(atv),
    )
