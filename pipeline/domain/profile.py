"""Per-user scores derived from the state and the population models: RFM, churn, BTYD, CLV."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.domain import btyd, spend
from pipeline.domain.churn import ChurnModel, churn_features
from pipeline.domain.engagement import Engagement, value_at
from pipeline.domain.rfm import RfmPopulation, RfmScore, RfmValues
from pipeline.domain.rfm_scale import RfmScale
from pipeline.domain.stages import DAY_MS
from pipeline.domain.state import UserState


@dataclass
class Models:
    """The population-level models one scorer keeps next to per-user state."""

    population: RfmPopulation = field(default_factory=RfmPopulation)
    churn: ChurnModel = field(default_factory=ChurnModel)
    bgnbd: btyd.BgNbdParams | None = None
    gamma_gamma: spend.GammaGammaParams | None = None
    btyd_version: int = 0
    # The RFM scale of the whole population the model leader published (None: score against
    # this worker's own population), and whether the models in use are the leader's.
    scale: RfmScale | None = None
    published: bool = False


@dataclass(frozen=True)
class PurchaseOutlook:
    """BG/NBD and Gamma-Gamma figures for one user at one time, over one horizon."""

    p_alive: float
    expected_purchases: float
    expected_order_value: float | None
    clv: float | None
    atv: float | None


def rfm_values(user: UserState) -> RfmValues | None:
    """The user's place in the RFM population; None before a paid order."""
    if user.order_count < 1 or user.last_paid_ms is None:
        return None
    return RfmValues(user.last_paid_ms // DAY_MS, user.order_count, user.monetary_cents)


def rfm_score(models: Models, user: UserState, at_ms: int, min_buyers: int = 1) -> RfmScore | None:
    """The user's RFM scores; None before a paid order or while the population has fewer
    than `min_buyers` buyers (the first buyer of a shop is not its top customer yet)."""
    values = rfm_values(user)
    if values is None:
        return None
    if models.scale is not None:
        if models.scale.buyers < max(1, min_buyers):
            return None
        return models.population.score_against(models.scale, values, at_ms // DAY_MS)
    if len(models.population) < max(1, min_buyers):
        return None
    return models.population.score(values, at_ms // DAY_MS)


def mean_order_value(orders: int, free_orders: int, paid_cents: int) -> float | None:
    """Mean value of the orders that had one (free orders stay out of the order-value
    model), in the base currency; None when every order was free."""
    valued = orders - free_orders
    return round(paid_cents / 100 / valued, 4) if valued > 0 else None


def btyd_inputs(
    user: UserState, at_ms: int
) -> tuple[float, float, float, float, float | None] | None:
    """(x repeat purchases, t_x, T in days, repeat orders with a value, their mean value)
    for a buyer, else None. Free orders count as purchases (BG/NBD) but carry no value
    (Gamma-Gamma), so the last two leave them out."""
    if user.first_paid_ms is None or user.last_paid_ms is None or user.order_count < 1:
        return None
    x = float(user.order_count - 1)
    t_x = (user.last_paid_ms - user.first_paid_ms) / DAY_MS
    age = max((at_ms - user.first_paid_ms) / DAY_MS, t_x)
    valued = user.order_count - user.free_orders
    mean_value = mean_order_value(user.order_count, user.free_orders, user.paid_cents)
    return x, t_x, age, float(max(valued - 1, 0)), mean_value


def purchase_outlook(
    models: Models, user: UserState, at_ms: int, horizon_days: float
) -> PurchaseOutlook | None:
    """P(alive), expected purchases over the horizon, order value, CLV and a year's value."""
    inputs = btyd_inputs(user, at_ms)
    if inputs is None or models.bgnbd is None:
        return None
    x, t_x, age, valued_x, mean_value = inputs
    bg = models.bgnbd
    alive = float(btyd.p_alive(bg, x, t_x, age))
    expected = float(btyd.expected_purchases(bg, horizon_days, x, t_x, age))
    year = float(btyd.expected_purchases(bg, 365.0, x, t_x, age))
    value = clv = atv = None
    if models.gamma_gamma is not None and mean_value is not None:
        value = float(spend.expected_order_value(models.gamma_gamma, valued_x, mean_value))
        clv, atv = expected * value, year * value
    return PurchaseOutlook(alive, expected, value, clv, atv)


def features(user: UserState, at_ms: int, half_life_ms: int, window_ms: int) -> dict[str, float]:
    """The churn model's view of the user at `at_ms`."""
    idle = (at_ms - (user.last_interaction_ms or at_ms)) / DAY_MS
    recent = sum(1 for t in user.recent_interactions_ms if at_ms - t < window_ms)
    engagement = Engagement(user.engagement_value, user.engagement_at_ms)
    paid = None if user.last_paid_ms is None else (at_ms - user.last_paid_ms) / DAY_MS
    return churn_features(
        idle_days=idle,
        tenure_days=(at_ms - (user.first_seen_ms or at_ms)) / DAY_MS,
        interactions_30d=recent,
        interactions=user.interactions,
        orders=user.order_count,
        monetary=user.monetary_cents / 100,
        engagement=value_at(engagement, at_ms, half_life_ms),
        days_since_paid=paid,
    )


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such a figure is reported as missing."""
    return value if value is not None and math.isfinite(value) else None
