"""BG/NBD purchase process: likelihood, fit and predictions (Gamma-Gamma order value: `spend`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln

from pipeline.domain.hypergeometric import future
from pipeline.domain.mbgnbd import VARIANTS, mbgnbd_ll

Array = npt.NDArray[np.float64]
F = TypeVar("F", float, npt.NDArray[Any])

MIN_CUSTOMERS = 10
# Where a BG/NBD fit is accepted (rate shape r and scale alpha, dropout Beta a and b, in any
# time unit): the predictions are proven finite and right over this box against a
# high-precision evaluation (tests/unit/test_btyd_numerics.py). A fit outside it has run to
# a degenerate corner (no dropout, a population of one rate): a FitError, and the last good
# parameters stay.
BGNBD_BOUNDS = {"r": (1e-3, 1e4), "alpha": (1e-3, 1e4), "a": (1e-2, 1e4), "b": (1e-2, 1e4)}
_LOG_BOUND = 15.0  # log-parameters are kept in [-15, 15] while fitting


class FitError(ValueError):
    """A model could not be fitted to the data given."""


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD: purchase rate lambda ~ Gamma(shape r, rate alpha), dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    time_unit: str = "days"
    # "bgnbd", or "mbgnbd": the modified BG/NBD, in which one-time buyers can drop out too
    # (pipeline.domain.mbgnbd).
    variant: str = "bgnbd"

    def __post_init__(self) -> None:
        _check_positive(r=self.r, alpha=self.alpha, a=self.a, b=self.b)
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")

    @property
    def future_b(self) -> float:
        """The b of the alive customer's expectation: b + 1 in the modified BG/NBD."""
        return self.b + 1.0 if self.variant == "mbgnbd" else self.b


def _arr(value: npt.ArrayLike) -> Array:
    return np.asarray(value, dtype=np.float64)


def _out(value: Array, like: F) -> F:
    """`value` as a Python float when it is 0-d, else as an array."""
    return cast(F, float(value) if np.ndim(value) == 0 else value)


# -- BG/NBD ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BgNbdData:
    x: Array
    t_x: Array
    T: Array
    x_unique: Array
    x_index: npt.NDArray[np.intp]


def _bgnbd_ll(r: float, alpha: float, a: float, b: float, d: _BgNbdData) -> Array:
    """Per-customer log-likelihood (Fader, Hardie & Lee 2005, eq. 6) in log space.

    The gamma and beta functions depend on x only, so they are evaluated once per distinct x.
    """
    xu = d.x_unique
    by_x = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu) - betaln(a, b)
    x = d.x
    alive = by_x[d.x_index] - (r + x) * np.log(alpha + d.T)
    xr = np.where(x > 0, x, 1.0)  # keeps b + x - 1 > 0 on the x == 0 branch that is dropped
    dead = alive + (r + x) * np.log((alpha + d.T) / (alpha + d.t_x)) + np.log(a / (b + xr - 1))
    return cast(Array, np.where(x > 0, np.logaddexp(alive, dead), alive))


def _bgnbd_data(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> _BgNbdData:
    xa, ta, Ta = (v.ravel() for v in np.broadcast_arrays(_arr(x), _arr(t_x), _arr(T)))
    if np.any(xa < 0) or np.any(ta < 0) or np.any(ta > Ta) or np.any((xa == 0) & (ta != 0)):
        raise ValueError("need x >= 0, 0 <= t_x <= T, and t_x == 0 when x == 0")
    xu, index = np.unique(xa, return_inverse=True)
    return _BgNbdData(xa, ta, Ta, xu, index)


def bgnbd_log_likelihood(
    params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> float:
    """Log-likelihood of the BG/NBD, summed over customers.

    x: repeat purchases; t_x: time of the last one since the first purchase (0 when x == 0);
    T: time since the first purchase; times in ``params.time_unit``.
    """
    d = _bgnbd_data(x, t_x, T)
    ll = mbgnbd_ll if params.variant == "mbgnbd" else _bgnbd_ll
    return float(np.sum(ll(params.r, params.alpha, params.a, params.b, d)))


def _fit(
    neg_mean_ll: Callable[[Array], float],
    start: Array,
    l2_penalty: float,
    model: str,
    report: dict[str, Any] | None = None,
) -> Array:
    """Minimise mean negative log-likelihood + l2_penalty * |log params|^2; params returned.
    `report`, if given, receives the optimiser's iterations and whether it restarted."""

    def objective(theta: Array) -> float:
        value = neg_mean_ll(np.exp(theta)) + l2_penalty * float(theta @ theta)
        return value if math.isfinite(value) else 1e100

    theta = np.clip(np.log(start), -_LOG_BOUND, _LOG_BOUND)
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(start)
    res = minimize(objective, theta, method="L-BFGS-B", bounds=bounds)
    iterations, restarted = int(res.nit), not res.success
    if restarted:  # a line-search stop near the optimum: restart from there once
        res = minimize(objective, res.x, method="L-BFGS-B", bounds=bounds)
        iterations += int(res.nit)
    if report is not None:
        report.update(converged=bool(res.success), iterations=iterations, restarted=restarted)
    if not res.success or not np.all(np.isfinite(res.x)) or res.fun >= 1e100:
        raise FitError(f"{model} fit failed: optimiser says {res.message!r}")
    if np.any(np.abs(res.x) > _LOG_BOUND - 1e-3):
        raise FitError(f"{model} fit failed: a parameter ran to exp(+-{_LOG_BOUND:g})")
    return cast(Array, np.exp(res.x))


def fit_bgnbd(
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    initial: BgNbdParams | None = None,
    l2_penalty: float = 0.0,
    time_unit: str = "days",
    variant: str = "bgnbd",
    report: dict[str, Any] | None = None,
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters (L-BFGS-B on log-parameters).

    ``l2_penalty`` adds ``l2_penalty * sum(log(param) ** 2)`` to the mean negative
    log-likelihood per customer. Raises FitError with fewer than 10 customers, with no
    repeat purchase at all, when the optimiser fails or a parameter runs off to a bound, and
    when the fit is degenerate (outside `BGNBD_BOUNDS`).
    """
    d = _bgnbd_data(x, t_x, T)
    xa, Ta = d.x, d.T
    if xa.size < MIN_CUSTOMERS:
        raise FitError(f"BG/NBD needs at least {MIN_CUSTOMERS} customers, got {xa.size}")
    if not np.any(xa > 0):
        raise FitError("BG/NBD cannot be fitted: no customer made a repeat purchase")
    if initial is None:  # rate r / alpha near the observed purchase rate
        start = np.array([1.0, max(float(Ta.sum() / xa.sum()), 1e-6), 1.0, 1.0])
    else:
        start = np.array([initial.r, initial.alpha, initial.a, initial.b])

    ll = mbgnbd_ll if variant == "mbgnbd" else _bgnbd_ll

    def neg_mean_ll(p: Array) -> float:
        return -float(np.mean(ll(p[0], p[1], p[2], p[3], d)))

    r, alpha, a, b = _fit(neg_mean_ll, start, l2_penalty, "BG/NBD", report)
    fitted = {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b)}
    outside = [
        f"{name} = {value:.4g} outside [{BGNBD_BOUNDS[name][0]:g}, {BGNBD_BOUNDS[name][1]:g}]"
        for name, value in fitted.items()
        if not BGNBD_BOUNDS[name][0] <= value <= BGNBD_BOUNDS[name][1]
    ]
    if outside:
        raise FitError(f"BG/NBD fit is degenerate: {', '.join(outside)}")
    return BgNbdParams(**fitted, time_unit=time_unit, variant=variant)


def p_alive(params: BgNbdParams, x: F, t_x: F, T: F) -> F:
    """Probability the customer is still active at T (1 when x == 0)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    modified = params.variant == "mbgnbd"
    if not any(np.ndim(v) for v in (x, t_x, T)):  # one customer: no arrays
        xs = float(x)
        if xs == 0 and not modified:
            return 1.0  # type: ignore[return-value]
        ratio = a / (b + xs) if modified else a / (b + xs - 1)
        odds = math.log(ratio) + (r + xs) * math.log((alpha + float(T)) / (alpha + float(t_x)))
        return float(expit(-odds))  # type: ignore[return-value]
    xa, ta, Ta = np.broadcast_arrays(_arr(x), _arr(t_x), _arr(T))
    if modified:  # a one-time buyer can have dropped out too
        log_odds = np.log(a / (b + xa)) + (r + xa) * np.log((alpha + Ta) / (alpha + ta))
        return _out(expit(-log_odds), x)
    xr = np.where(xa > 0, xa, 1.0)
    log_odds = np.log(a / (b + xr - 1)) + (r + xr) * np.log((alpha + Ta) / (alpha + ta))
    return _out(np.where(xa > 0, expit(-log_odds), 1.0), x)


def _future(params: BgNbdParams, x: Array, T: Array, t: Array) -> Array:
    """Expected purchases in (T, T + t] of a customer alive at T after x repeat purchases,
    element by element (`hypergeometric.future`: finite and right over `BGNBD_BOUNDS`)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.future_b
    xa, Ta, ta = np.broadcast_arrays(_arr(x), _arr(T), _arr(t))
    out = np.empty(xa.shape)
    for i in np.ndindex(xa.shape):
        out[i] = future(r, alpha, a, b, float(xa[i]), float(Ta[i]), float(ta[i]))
    return out


def expected_purchases_new(params: BgNbdParams, t: F) -> F:
    """E[X(t)]: expected repeat purchases in (0, t] of a customer just acquired (in the
    modified BG/NBD, one who may drop out after that first purchase)."""
    zero = np.zeros_like(_arr(t))
    return _out(_future(params, zero, zero, _arr(t)) * _arr(p_alive(params, zero, zero, zero)), t)


def expected_purchases(params: BgNbdParams, t: float | F, x: F, t_x: F, T: F) -> F:
    """Expected purchases in (T, T + t] given the history (x, t_x, T): P(alive) x future."""
    if not any(np.ndim(v) for v in (t, x, t_x, T)):  # one customer: no arrays
        xs, ts, Ts = float(x), float(t_x), float(T)
        alive = float(p_alive(params, xs, ts, Ts))
        value = alive * future(params.r, params.alpha, params.a, params.future_b, xs, Ts, float(t))
        return value  # type: ignore[return-value]
    xa, ta, Ta, tt = np.broadcast_arrays(_arr(x), _arr(t_x), _arr(T), _arr(t))
    return _out(_future(params, xa, Ta, tt) * _arr(p_alive(params, xa, ta, Ta)), x)
