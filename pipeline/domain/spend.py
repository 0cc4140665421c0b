"""Gamma-Gamma order value (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves
for customer base analysis"): likelihood, fit, expected order value, and CLV with BG/NBD."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from pipeline.domain.btyd import (
    MIN_CUSTOMERS,
    Array,
    BgNbdParams,
    F,
    FitError,
    _arr,
    _check_positive,
    _fit,
    _out,
    expected_purchases,
)


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma: order value ~ Gamma(shape p, rate nu), nu ~ Gamma(shape q, rate v)."""

    p: float
    q: float
    v: float

    def __post_init__(self) -> None:
        _check_positive(p=self.p, q=self.q, v=self.v)


def _gg_data(x: npt.ArrayLike, mean_value: npt.ArrayLike) -> tuple[Array, Array]:
    xa, ma = np.broadcast_arrays(_arr(x), _arr(mean_value))
    keep = xa > 0
    if np.any(ma[keep] <= 0):
        raise ValueError("mean_value must be > 0 for customers with x > 0")
    return xa[keep], ma[keep]


def _gg_ll(p: float, q: float, v: float, x: Array, m: Array) -> Array:
    """Log-density of a customer's mean order value m over x orders (FHL 2005, eq. 3)."""
    px = p * x
    head = gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
    return cast(
        Array, head + (px - 1.0) * np.log(m) + px * np.log(x) - (px + q) * np.log(v + m * x)
    )


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, x: npt.ArrayLike, mean_value: npt.ArrayLike
) -> float:
    """Log-likelihood of the Gamma-Gamma model over customers with x > 0 transactions."""
    xa, ma = _gg_data(x, mean_value)
    return float(np.sum(_gg_ll(params.p, params.q, params.v, xa, ma)))


def fit_gamma_gamma(
    x: npt.ArrayLike, mean_value: npt.ArrayLike, l2_penalty: float = 0.0
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from customers with x > 0.

    ``l2_penalty`` as in `fit_bgnbd`. Raises FitError with fewer than 10 such customers,
    when the optimiser fails or a parameter runs off to a bound, and when q <= 1 (no finite
    expected order value: the last good parameters are kept).
    """
    xa, ma = _gg_data(x, mean_value)
    if xa.size < MIN_CUSTOMERS:
        raise FitError(f"Gamma-Gamma needs at least {MIN_CUSTOMERS} customers with x > 0")
    start = np.array([1.0, 2.0, float(np.mean(ma))])  # population mean p*v/(q-1) = mean

    def neg_mean_ll(p: Array) -> float:
        return -float(np.mean(_gg_ll(p[0], p[1], p[2], xa, ma)))

    p, q, v = _fit(neg_mean_ll, start, l2_penalty, "Gamma-Gamma")
    if q <= 1:  # the population's mean order value p v / (q - 1) would be infinite
        raise FitError(f"Gamma-Gamma fit is degenerate: q = {q:.4g} <= 1 (infinite mean value)")
    return GammaGammaParams(float(p), float(q), float(v))


def expected_order_value(params: GammaGammaParams, x: F, mean_value: F) -> F:
    """E[order value | x, mean]: weighted average of the population mean p*v/(q-1) and
    the customer's mean, weight p*x/(p*x+q-1) on the latter; needs q > 1.
    """
    p, q, v = params.p, params.q, params.v
    if q <= 1:
        raise ValueError(f"expected order value is infinite when q <= 1 (q = {q})")
    xa, ma = np.broadcast_arrays(_arr(x), _arr(mean_value))
    weight = p * xa / (p * xa + q - 1.0)
    own = np.where(xa > 0, ma, 0.0)
    return _out((1.0 - weight) * p * v / (q - 1.0) + weight * own, x)


def clv(
    bg: BgNbdParams, gg: GammaGammaParams, t: float | F, x: F, t_x: F, T: F, mean_value: F
) -> F:
    """Undiscounted customer value over (T, T + t]: expected purchases x expected order value.

    No discount rate is applied; `t` is in ``bg.time_unit``.
    """
    purchases = _arr(expected_purchases(bg, t, x, t_x, T))
    value = _arr(expected_order_value(gg, x, mean_value))
    return _out(purchases * value, x)
