"""The Gauss hypergeometric function where the BG/NBD needs it, finite over every parameter
a fit can reach.

SciPy's `hyp2f1` is fast and right over most of the space, but returns nan for large
parameters (a dropout Beta with a and b in the hundreds or thousands, which real fits reach),
so the purchase predictions went null. Here its result is kept where it is finite and keeps
its digits (`future`); elsewhere the power series is summed directly (every term is positive
for the BG/NBD's arguments, so there is no cancellation, and it is summed with a running
scale, so nothing overflows), and where the series converges too slowly, mpmath integrates
the expectation over the dropout probability (`future_by_quadrature`).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
from scipy.special import hyp2f1

# The series stops once a term and a bound on the rest are below this share of the sum.
_TOLERANCE = 1e-17
_MAX_TERMS = 20_000
_RESCALE = 1e200


def log_hyp2f1_series(a: float, b: float, c: float, z: float) -> float | None:
    """log 2F1(a, b; c; z) by its power series, for a, b, c > 0 and 0 <= z < 1 (every term
    positive); None when it has not converged within 20,000 terms."""
    if not (a > 0 and b > 0 and c > 0 and 0 <= z < 1):
        raise ValueError(f"need a, b, c > 0 and 0 <= z < 1, got {a}, {b}, {c}, {z}")
    # The terms after the first are summed apart, so that log1p keeps the digits of a value
    # close to 1 (a small bracket in the BG/NBD's expectation depends on them).
    rest, term, log_scale = 0.0, 1.0, 0.0
    for n in range(_MAX_TERMS):
        ratio = z * (a + n) * (b + n) / ((c + n) * (n + 1))
        term *= ratio
        rest += term
        if rest > _RESCALE:  # the 1 no longer counts: scale the whole sum down
            rest, term = rest / _RESCALE, term / _RESCALE
            log_scale += math.log(_RESCALE)
        # The ratios tend to z from here on at most max(ratio, z): the rest is bounded by a
        # geometric tail.
        bound = max(ratio, z)
        total = rest + (math.exp(-log_scale) if log_scale else 1.0)
        if bound < 1 and term * bound / (1 - bound) <= _TOLERANCE * total:
            return math.log1p(rest) if not log_scale else math.log(total) + log_scale
    return None


# Within this of a == 1 the closed form is 0/0: interpolated between both sides this far out
# (the error is of the order of its square).
NEAR_ONE = 1e-4


def future(r: float, alpha: float, a: float, b: float, x: float, T: float, t: float) -> float:
    """Expected purchases in (T, T + t] of a BG/NBD customer alive at T after x repeat
    purchases: SciPy's 2F1 in Euler's form, (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z),
    which stays finite for large x, where the bracket 1 - (1-z)^(a-1) 2F1 is at least a
    hundredth of its terms (SciPy's own error grows at most a hundredfold); `bgnbd_future`
    elsewhere (large a and b, which fits reach; a small bracket; an integer c - a - b of
    the 2F1, r + x - a + 1, where SciPy is finite but inexact; a near 1, where the form is
    0/0)."""
    gap = r + x - a + 1.0
    if abs(a - 1.0) >= NEAR_ONE and abs(gap - round(gap)) >= 1e-6:
        z = t / (alpha + T + t)
        c = a + b + x - 1.0
        try:
            with np.errstate(all="ignore"):  # a non-finite 2F1 goes to the fallback
                rest = float((1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z))
        except OverflowError:
            rest = math.inf
        bracket = 1.0 - rest
        if math.isfinite(bracket) and abs(bracket) > 1e-2 * max(1.0, abs(rest)):
            value = c / (a - 1.0) * bracket
            if value >= 0:
                return value
    return bgnbd_future(r, alpha, a, b, x, T, t)


def bgnbd_future(r: float, alpha: float, a: float, b: float, x: float, T: float, t: float) -> float:
    """Expected purchases in (T, T + t] of a BG/NBD customer alive at T after x repeat
    purchases (Fader, Hardie & Lee 2005, eq. 10 over p_alive):

        (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],
        z = t / (alpha+T+t),

    the 2F1 by its series in log space and the bracket as -expm1 of a logarithm, so a small
    bracket keeps its digits; by quadrature where the series does not converge."""
    if abs(a - 1.0) < NEAR_ONE:
        below = _closed_form(r, alpha, 1.0 - NEAR_ONE, b, x, T, t)
        above = _closed_form(r, alpha, 1.0 + NEAR_ONE, b, x, T, t)
        if below is not None and above is not None:  # interpolated at a
            return below + (above - below) * (a - 1.0 + NEAR_ONE) / (2 * NEAR_ONE)
    else:
        value = _closed_form(r, alpha, a, b, x, T, t)
        if value is not None:
            return value
    return future_by_quadrature(r + x, t / (alpha + T), a, b + x)


def _closed_form(
    r: float, alpha: float, a: float, b: float, x: float, T: float, t: float
) -> float | None:
    c = a + b + x - 1.0
    z = t / (alpha + T + t)
    log_f = log_hyp2f1_series(r + x, b + x, c, z) if c > 0 else None
    if log_f is None:
        return None
    log_term = -(r + x) * math.log1p(t / (alpha + T)) + log_f
    return c / (a - 1.0) * -math.expm1(log_term)


def future_by_quadrature(s: float, k: float, a: float, b: float, digits: int = 30) -> float:
    """E[(1 - (1 + k p)^-s) / p] for p ~ Beta(a, b), by mpmath's quadrature.

    The BG/NBD's future purchases are this expectation with s = r + x, k = t / (alpha + T)
    and the dropout Beta updated by x repeat purchases (b + x): the purchase rate integrated
    out analytically, the dropout probability numerically. The integrand is bounded (by s k).
    The Beta density is singular at 0 when a < 1 and at 1 when b < 1: each half of [0, 1] is
    integrated in a variable that takes its singularity out (p = u^(1/a), 1 - p = v^(1/b)),
    which leaves smooth integrands; elsewhere the cuts follow the density's mean and spread.
    Finite and right where the closed form's 2F1 is not; slow (milliseconds): a fallback,
    and the tests' reference."""
    with mpmath.workdps(digits):
        ms, mk, ma, mb = (mpmath.mpf(v) for v in (s, k, a, b))
        half = mpmath.mpf(1) / 2

        def gain(p: mpmath.mpf) -> mpmath.mpf:
            return ms * mk if p <= 0 else -mpmath.expm1(-ms * mpmath.log1p(mk * p)) / p

        def density(p: mpmath.mpf) -> mpmath.mpf:  # unnormalised
            if p <= 0 or p >= 1:
                return mpmath.mpf(0)
            return mpmath.exp((ma - 1) * mpmath.log(p) + (mb - 1) * mpmath.log1p(-p))

        mean = ma / (ma + mb)
        spread = mpmath.sqrt(ma * mb / ((ma + mb) ** 2 * (ma + mb + 1)))
        marks = {mean + f * spread for f in (-8, -4, -2, -1, 0, 1, 2, 4, 8)}

        def cuts(lo: mpmath.mpf, hi: mpmath.mpf) -> list[mpmath.mpf]:
            return sorted({lo, hi} | {m for m in marks if lo < m < hi})

        if ma < 1:  # p^(a-1) dp = du / a

            def low(u: mpmath.mpf) -> mpmath.mpf:
                p = u ** (1 / ma)
                return gain(p) * mpmath.exp((mb - 1) * mpmath.log1p(-p))

            top = half**ma
            left = (
                mpmath.quad(low, [0, *(top * mpmath.mpf(10) ** -e for e in (12, 6, 3, 1)), top])
                / ma
            )
        else:
            left = mpmath.quad(lambda p: gain(p) * density(p), cuts(mpmath.mpf(0), half))
        if mb < 1:  # (1-p)^(b-1) dp = -dv / b

            def high(v: mpmath.mpf) -> mpmath.mpf:
                p = 1 - v ** (1 / mb)
                return gain(p) * mpmath.exp((ma - 1) * mpmath.log(p)) if p > 0 else 0

            top = half**mb
            right = (
                mpmath.quad(high, [0, *(top * mpmath.mpf(10) ** -e for e in (12, 6, 3, 1)), top])
                / mb
            )
        else:
            right = mpmath.quad(lambda p: gain(p) * density(p), cuts(half, mpmath.mpf(1)))
        return float((left + right) / mpmath.beta(ma, mb))
