"""BG/NBD predictions are finite and right over the parameter space fits reach: checked
against an independent high-precision evaluation (mpmath quadrature of the expectation over
the dropout probability, pipeline.domain.hypergeometric.future_by_quadrature at 40 digits)."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.btyd import (
    BGNBD_BOUNDS,
    BgNbdParams,
    expected_purchases,
    expected_purchases_new,
    p_alive,
)
from pipeline.domain.hypergeometric import future_by_quadrature, log_hyp2f1_series
from pipeline.domain.mbgnbd import VARIANTS
from pipeline.domain.spend import GammaGammaParams, clv, expected_order_value

# Parameters the product itself fitted on the demo's traffic (issue 16): SciPy's 2F1 gave
# nan and -inf with them, and the documents' expected purchases and CLV went null.
FITTED = BgNbdParams(
    r=0.12159929992375232, alpha=1.8321559954115685, a=828.2260156995006, b=1422.924845371149
)


def reference(params: BgNbdParams, t: float, x: int, t_x: float, T: float) -> float:
    """P(alive) x expected purchases of an alive customer, at 40 digits (the modified BG/NBD:
    the dropout Beta one purchase further, and a one-time buyer may be gone)."""
    future = future_by_quadrature(params.r + x, t / (params.alpha + T), params.a,
                                  params.future_b + x, digits=40)  # fmt: skip
    modified = params.variant == "mbgnbd"
    if x == 0 and not modified:
        return future
    with mpmath.workdps(40):
        r, alpha, a, b = (mpmath.mpf(v) for v in (params.r, params.alpha, params.a, params.b))
        ratio = a / (b + x) if modified else a / (b + x - 1)
        odds = ratio * ((alpha + T) / (alpha + t_x)) ** (r + x)
        return float(future / (1 + odds))


@pytest.mark.parametrize(
    ("x", "t_x", "T", "right"),
    [(0, 0.0, 10.0, 0.407257), (5, 20.0, 60.0, 0.0200019), (2, 0.0, 48.56, 0.00271222)],
)
def test_expected_purchases_with_a_fit_of_large_dropout_parameters(
    x: int, t_x: float, T: float, right: float
) -> None:
    got = expected_purchases(FITTED, 90.0, x, t_x, T)
    assert math.isfinite(got)
    assert got == pytest.approx(right, rel=1e-5)
    assert got == pytest.approx(reference(FITTED, 90.0, x, t_x, T), rel=1e-8)


def test_arrays_mixing_easy_and_hard_customers_give_each_customer_its_own_value() -> None:
    x, t_x, T = (
        np.array([0, 5, 2, 1]),
        np.array([0.0, 20.0, 0.0, 3.0]),
        np.array([10.0, 60, 48.56, 7]),
    )
    together = expected_purchases(FITTED, 90.0, x, t_x, T)
    alone = [
        expected_purchases(FITTED, 90.0, int(a), float(b), float(c))
        for a, b, c in zip(x, t_x, T, strict=True)
    ]
    assert together.tolist() == pytest.approx(alone, rel=1e-12)


def within(name: str) -> st.SearchStrategy[float]:
    """A parameter log-uniformly over the box where fits are accepted (`BGNBD_BOUNDS`)."""
    low, high = BGNBD_BOUNDS[name]
    return st.floats(min_value=math.log10(low), max_value=math.log10(high)).map(lambda e: 10.0**e)


@st.composite
def customers(draw: st.DrawFn) -> tuple[BgNbdParams, float, int, float, float]:
    """Parameters of either variant over the whole box a fit is accepted in (r and alpha
    1e-3 to 1e4, a and b 1e-2 to 1e4), a history of up to 500 repeat purchases over up to
    ten years, horizons of a day to ten years."""
    values = (draw(within(name)) for name in ("r", "alpha", "a", "b"))
    params = BgNbdParams(*values, variant=draw(st.sampled_from(VARIANTS)))
    T = 10.0 ** draw(st.floats(min_value=-1, max_value=math.log10(3650)))
    x = draw(st.integers(0, 500))
    t_x = 0.0 if x == 0 else T * draw(st.floats(min_value=0, max_value=1))
    t = 10.0 ** draw(st.floats(min_value=0, max_value=math.log10(3650)))
    return params, t, x, t_x, T


@settings(max_examples=60, deadline=None)
@given(customers())
def test_expected_purchases_are_finite_and_right_everywhere(
    case: tuple[BgNbdParams, float, int, float, float],
) -> None:
    params, t, x, t_x, T = case
    got = expected_purchases(params, t, x, t_x, T)
    assert math.isfinite(got)
    assert got >= 0
    # Bounded by what a customer alive for sure at the highest rate could buy: (r + x) k.
    assert got <= (params.r + x) * t / (params.alpha + T) * (1 + 1e-9)
    assert got == pytest.approx(reference(params, t, x, t_x, T), rel=1e-6, abs=1e-300)


@settings(max_examples=60, deadline=None)
@given(customers())
def test_p_alive_and_new_customer_purchases_are_finite(
    case: tuple[BgNbdParams, float, int, float, float],
) -> None:
    params, t, x, t_x, T = case
    alive = p_alive(params, x, t_x, T)
    assert 0.0 <= alive <= 1.0
    new = expected_purchases_new(params, t)
    assert math.isfinite(new)
    assert new >= 0
    assert new == pytest.approx(reference(params, t, 0, 0.0, 0.0), rel=1e-6, abs=1e-300)


def test_the_series_refuses_arguments_outside_its_domain() -> None:
    with pytest.raises(ValueError, match="0 <= z < 1"):
        log_hyp2f1_series(1.0, 1.0, 1.0, 1.0)
    assert log_hyp2f1_series(1.0, 1.0, 2.0, 0.5) == pytest.approx(math.log(2 * math.log(2)))


@settings(max_examples=100, deadline=None)
@given(
    st.floats(min_value=-2, max_value=4).map(lambda e: 10.0**e),
    st.floats(min_value=1e-3, max_value=4).map(lambda e: 1.0 + 10.0**e),
    st.floats(min_value=-2, max_value=6).map(lambda e: 10.0**e),
    st.integers(0, 500),
    st.floats(min_value=0.01, max_value=1e6),
)
def test_order_value_and_clv_are_finite_for_every_accepted_gamma_gamma_fit(
    p: float, q: float, v: float, x: int, mean: float
) -> None:
    # A Gamma-Gamma fit is accepted with q > 1 only (fit_gamma_gamma): the expected order
    # value is a weighted mean of the population's and the customer's, so it lies between.
    gg = GammaGammaParams(p, q, v)
    value = expected_order_value(gg, x, mean)
    assert math.isfinite(value)
    population = p * v / (q - 1)
    assert min(population, mean if x else population) * (1 - 1e-12) <= value
    assert value <= max(population, mean if x else population) * (1 + 1e-12)
    assert math.isfinite(clv(FITTED, gg, 90.0, x, 0.0 if x == 0 else 20.0, 60.0, mean))
