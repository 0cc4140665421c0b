"""Refits of the purchase models on every buyer: BG/NBD (or the modified BG/NBD, chosen by
configuration or by a holdout check) and Gamma-Gamma, with the fit's diagnostics.

Pure functions on arrays, so a refit runs in a thread while the worker scores events.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from pipeline.domain import btyd, btyd_holdout, spend
from pipeline.domain.mbgnbd import VARIANTS
from pipeline.domain.stages import DAY_MS

log = logging.getLogger(__name__)

AUTO = "auto"  # choose the variant whose holdout predictions err least


class RefitInputs(NamedTuple):
    """One entry per buyer: repeat purchases x, t_x and age T (days, at the event clock),
    repeat orders with a value and their mean value (base currency); and the holdout split
    of the last weeks (None: no holdout check)."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    valued_x: np.ndarray
    mean_value: np.ndarray
    holdout: btyd_holdout.Holdout | None = None


def inputs_of(rows: Sequence[btyd_holdout.BuyerRow], clock_ms: int, holdout_ms: int) -> RefitInputs:
    """The arrays a refit takes from buyer rows (first paid, last paid, orders, free orders,
    cents paid, recent payments, the one before them) at the event clock `clock_ms`: x, t_x,
    T in days, the repeat orders with a value and their mean value (free orders are
    purchases, not order values), and the holdout split of the last `holdout_ms` (0: none)."""
    first = np.array([r[0] for r in rows], dtype=float)
    last = np.array([r[1] for r in rows], dtype=float)
    count = np.array([r[2] for r in rows], dtype=float)
    valued = count - np.array([r[3] for r in rows], dtype=float)
    paid = np.array([r[4] for r in rows], dtype=float)
    t_x = (last - first) / DAY_MS
    age = np.maximum((clock_ms - first) / DAY_MS, t_x)
    mean_value = paid / 100 / np.maximum(valued, 1)
    holdout = None
    if holdout_ms > 0:
        records = ((r[0], r[1], r[2], r[5], r[6]) for r in rows)
        holdout = btyd_holdout.split(records, clock_ms, holdout_ms)
    return RefitInputs(count - 1, t_x, age, np.maximum(valued - 1, 0), mean_value, holdout)


@dataclass(frozen=True)
class RefitResult:
    """What a refit produced, or why it kept the previous parameters."""

    bgnbd: btyd.BgNbdParams | None
    gamma_gamma: spend.GammaGammaParams | None
    customers: int
    error: str | None = None
    # The fit's quality: mean log-likelihood per customer of each model and how many
    # customers each was fitted on, the optimiser's convergence, and the holdout check
    # (`holdout`; with `BTYD_MODEL=auto` one per variant in `holdout_variants`).
    diagnostics: dict[str, Any] | None = None


def _holdout(inputs: RefitInputs, variant: str, l2_penalty: float) -> tuple[str, dict[str, Any]]:
    """The variant to fit and what the holdout check says about it."""
    holdout = inputs.holdout
    if holdout is None:
        return (VARIANTS[0] if variant == AUTO else variant), {}
    if variant != AUTO:
        return variant, {"holdout": btyd_holdout.check(holdout, variant, l2_penalty)}
    checks = [btyd_holdout.check(holdout, v, l2_penalty) for v in VARIANTS]
    chosen = btyd_holdout.best(checks) or VARIANTS[0]
    found = next(c for c in checks if c["variant"] == chosen)
    return chosen, {"holdout": found, "holdout_variants": checks}


def fit(
    inputs: RefitInputs | tuple[np.ndarray, ...],
    initial: btyd.BgNbdParams | None = None,
    variant: str = "bgnbd",
    l2_penalty: float = 0.0,
) -> RefitResult:
    """BG/NBD (`variant`: "bgnbd", "mbgnbd" or "auto") and Gamma-Gamma on arrays of buyers.

    `l2_penalty` regularises the BG/NBD fit (`btyd.fit_bgnbd`). A fit the data cannot
    support (too few buyers, no repeat purchase, a degenerate fit) returns the error and no
    parameters: the caller keeps the last good ones.
    """
    data = RefitInputs(*inputs)
    x, t_x, age, valued_x, mean_value = data[:5]
    chosen, diagnostics = _holdout(data, variant, l2_penalty)
    if initial is not None and initial.variant != chosen:
        initial = None  # the other model's parameters are no start for this one
    convergence: dict[str, Any] = {}
    try:
        bg = btyd.fit_bgnbd(
            x, t_x, age, initial=initial, variant=chosen, report=convergence,
            l2_penalty=l2_penalty,
        )  # fmt: skip
        repeat = (valued_x > 0) & (mean_value > 0)
        gg = spend.fit_gamma_gamma(valued_x[repeat], mean_value[repeat])
    except btyd.FitError as exc:
        log.warning("purchase models not refitted (the last good parameters stay): %s", exc)
        return RefitResult(None, None, len(x), str(exc), diagnostics or None)
    diagnostics.update(
        {
            "bgnbd_log_likelihood": btyd.bgnbd_log_likelihood(bg, x, t_x, age) / len(x),
            "bgnbd_customers": float(len(x)),
            "bgnbd_convergence": convergence,
            "gamma_gamma_log_likelihood": spend.gamma_gamma_log_likelihood(
                gg, valued_x[repeat], mean_value[repeat]
            )
            / int(repeat.sum()),
            "gamma_gamma_customers": float(repeat.sum()),
        }
    )
    return RefitResult(bg, gg, len(x), diagnostics=diagnostics)
