"""The purchase models' holdout check: the calibration/holdout split of each buyer, the
check's predictions against simulated purchases, and the variant chosen by it."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.domain.btyd import BgNbdParams
from pipeline.domain.btyd_holdout import BuyerRecord, best, check, recent_payments, split
from pipeline.domain.btyd_sim import simulate_purchase_times
from pipeline.domain.stages import DAY_MS
from pipeline.refit import fit
from pipeline.settings import Settings

D = DAY_MS
HOLDOUT = 28 * D


def record(payments_days: list[int], latest_event_day: int | None = None) -> BuyerRecord:
    times = [d * D for d in payments_days]
    latest = (latest_event_day if latest_event_day is not None else payments_days[-1]) * D
    after, before = recent_payments(times, latest, HOLDOUT)
    return (times[0], times[-1], len(times), after, before)


def test_each_buyer_is_split_at_the_cutoff_by_hand() -> None:
    clock = 100 * D  # cutoff: day 72
    buyers = [
        record([10, 30, 50]),  # nothing after the cutoff
        record([20, 40, 80, 90]),  # two purchases after it; the last before it on day 40
        record([80, 85]),  # first seen after the cutoff: no calibration part
        record([5], latest_event_day=95),  # one purchase, seen since
    ]
    holdout = split(buyers, clock, HOLDOUT)
    assert holdout.days == 28
    assert holdout.x.tolist() == [2, 1, 0]
    assert holdout.t_x.tolist() == [40, 20, 0]
    assert holdout.T.tolist() == [62, 52, 67]
    assert holdout.actual.tolist() == [0, 2, 0]


def test_the_payments_kept_cover_any_later_cutoff() -> None:
    after, before = recent_payments([D * d for d in (50, 5, 30, 80)], 90 * D, HOLDOUT)
    assert after == (80 * D,)  # later than day 62, in order
    assert before == 50 * D  # the latest at or before day 62
    assert recent_payments([], 90 * D, HOLDOUT) == ((), None)


def simulated(params: BgNbdParams, n: int, seed: int) -> tuple[list[BuyerRecord], int]:
    """Buyers first seen uniformly over 300 days before the clock, their purchases drawn
    from `params`; every payment is in the ledger."""
    rng = np.random.default_rng(seed)
    clock = 400 * D
    ages = rng.uniform(60, 300, n)
    buyers: list[BuyerRecord] = []
    for age, times in zip(ages, simulate_purchase_times(params, n, ages, rng), strict=True):
        first = clock - int(age * D)
        paid = [first, *(first + int(t * D) for t in times)]
        after, before = recent_payments(paid, paid[-1], 56 * D)
        buyers.append((first, paid[-1], len(paid), after, before))
    return buyers, clock


def test_a_right_model_predicts_the_holdout_total() -> None:
    truth = BgNbdParams(r=0.8, alpha=8.0, a=0.9, b=4.0)
    buyers, clock = simulated(truth, 3_000, seed=5)
    result = check(split(buyers, clock, 56 * D), "bgnbd")
    assert "error" not in result, result
    assert result["customers"] == 3_000
    assert result["actual"] > 500
    assert abs(result["predicted"] / result["actual"] - 1) < 0.1, result
    assert 0 < result["mean_absolute_error"] < 2


@pytest.mark.parametrize(
    "truth",
    [
        BgNbdParams(r=0.8, alpha=8.0, a=0.9, b=2.0, variant="mbgnbd"),
        BgNbdParams(r=0.8, alpha=8.0, a=0.9, b=4.0, variant="bgnbd"),
    ],
    ids=["modified", "plain"],
)
def test_auto_fits_the_variant_the_holdout_prefers_and_reports_both(truth: BgNbdParams) -> None:
    buyers, clock = simulated(truth, 2_000, seed=9)
    first = np.array([b[0] for b in buyers], dtype=float)
    last = np.array([b[1] for b in buyers], dtype=float)
    count = np.array([b[2] for b in buyers], dtype=float)
    x, t_x, T = count - 1, (last - first) / D, (clock - first) / D
    values = np.where(x > 0, np.random.default_rng(1).gamma(4.0, 12.0, x.size), 0.0)
    inputs = (x, t_x, T, x, values, split(buyers, clock, 56 * D))
    result = fit(inputs, None, "auto")
    assert result.error is None
    assert result.bgnbd is not None
    diagnostics = result.diagnostics
    assert diagnostics is not None
    checks = diagnostics["holdout_variants"]
    assert [c["variant"] for c in checks] == ["bgnbd", "mbgnbd"]
    chosen = min(checks, key=lambda c: c["mean_absolute_error"])["variant"]
    assert result.bgnbd.variant == chosen == diagnostics["holdout"]["variant"]
    assert chosen == truth.variant  # the process the purchases were drawn from
    assert diagnostics["bgnbd_convergence"]["converged"] is True
    assert diagnostics["bgnbd_convergence"]["iterations"] > 0
    # A configured variant is fitted whatever the holdout says, and checked alone.
    fixed = fit(inputs, None, "bgnbd")
    assert fixed.bgnbd is not None
    assert fixed.bgnbd.variant == "bgnbd"
    assert fixed.diagnostics is not None
    assert "holdout_variants" not in fixed.diagnostics
    assert fixed.diagnostics["holdout"]["variant"] == "bgnbd"


def test_too_few_buyers_before_the_cutoff_is_said_not_fitted() -> None:
    buyers = [record([10 * i, 10 * i + 5]) for i in range(1, 5)]
    result = check(split(buyers, 100 * D, HOLDOUT), "bgnbd")
    assert result["customers"] == 4
    assert "needs 10" in result["error"]
    assert best([result]) is None


def test_the_penalty_turns_data_without_dropout_into_a_fit() -> None:
    """Everyone buys at one rate and nobody drops out: unregularised, the fit runs to a
    corner (a degenerate FitError, the last good parameters stay); with the default
    penalty it gives the observed rate and almost no dropout."""
    rng = np.random.default_rng(4)
    T = rng.uniform(60, 200, 500)
    x = rng.poisson(0.05 * T).astype(float)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)
    values = np.where(x > 0, rng.gamma(4.0, 12.0, x.size), 0.0)
    assert fit((x, t_x, T, x, values), None, "bgnbd").error is not None
    result = fit((x, t_x, T, x, values), None, "bgnbd", Settings().btyd_l2_penalty)
    assert result.error is None
    assert result.bgnbd is not None
    assert abs(result.bgnbd.r / result.bgnbd.alpha - 0.05) < 0.005  # the purchase rate
    assert result.bgnbd.a / (result.bgnbd.a + result.bgnbd.b) < 0.01  # dropout per purchase
