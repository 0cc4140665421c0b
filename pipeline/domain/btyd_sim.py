"""Simulated customers from the BG/NBD and Gamma-Gamma models, for tests and checks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.domain.btyd import Array, BgNbdParams
from pipeline.domain.spend import GammaGammaParams


def simulate_bgnbd(
    params: BgNbdParams, n: int, T: npt.ArrayLike, rng: np.random.Generator
) -> tuple[Array, Array, Array]:
    """Draw (x, t_x, T) for `n` customers each observed for `T` after the first purchase.

    lambda ~ Gamma(shape r, scale 1/alpha), p ~ Beta(a, b); repeat purchases follow a Poisson
    process of rate lambda and the customer drops out right after each repeat purchase with
    probability p, so the number made before dropping out is J ~ Geometric(p) on {1, 2, ...}.
    Given N(T) = n Poisson arrivals in (0, T], they are uniform order statistics; the k-th of
    n is T * Beta(k, n - k + 1), which gives t_x exactly without drawing every arrival. In the
    modified BG/NBD (`params.variant`) the customer can drop out after the first purchase too.
    """
    ages = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    lam = rng.gamma(params.r, 1.0 / params.alpha, size=n)
    drop = rng.beta(params.a, params.b, size=n)
    arrivals = rng.poisson(lam * ages)
    before_dropout = rng.geometric(np.clip(drop, 1e-300, 1.0))
    if params.variant == "mbgnbd":  # the first purchase can be the last: J on {0, 1, ...}
        before_dropout = before_dropout - 1
    x = np.minimum(arrivals, before_dropout)
    t_x = np.zeros(n)
    some = x > 0
    t_x[some] = ages[some] * rng.beta(x[some], arrivals[some] - x[some] + 1)
    return x.astype(np.float64), t_x, ages


def simulate_gamma_gamma(
    params: GammaGammaParams, x: npt.ArrayLike, rng: np.random.Generator
) -> Array:
    """Mean order value of customers with `x` > 0 transactions each.

    nu ~ Gamma(shape q, scale 1/v) per customer; each order value ~ Gamma(shape p, scale 1/nu),
    so the mean of x orders ~ Gamma(shape p * x, scale 1 / (nu * x)).
    """
    xa = np.asarray(x, dtype=np.float64)
    if np.any(xa <= 0):
        raise ValueError("simulate_gamma_gamma needs x > 0 for every customer")
    nu = rng.gamma(params.q, 1.0 / params.v, size=xa.shape)
    return rng.gamma(params.p * xa, 1.0 / (nu * xa))


def simulate_purchase_times(
    params: BgNbdParams, n: int, T: npt.ArrayLike, rng: np.random.Generator
) -> list[Array]:
    """The repeat purchase times in (0, T] of `n` customers (days after each one's first
    purchase), drawn purchase by purchase: exponential gaps of rate lambda, and after each
    purchase (in the modified BG/NBD the first too) a dropout with probability p."""
    ages = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,))
    lam = rng.gamma(params.r, 1.0 / params.alpha, size=n)
    drop = rng.beta(params.a, params.b, size=n)
    out: list[Array] = []
    for i in range(n):
        times: list[float] = []
        alive = not (params.variant == "mbgnbd" and rng.random() < drop[i])
        at = 0.0
        while alive:
            at += rng.exponential(1.0 / lam[i])
            if at > ages[i]:
                break
            times.append(at)
            alive = rng.random() >= drop[i]
        out.append(np.asarray(times))
    return out
