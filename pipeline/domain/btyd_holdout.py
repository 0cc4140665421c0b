"""A holdout check of the purchase models: fitted on the buyers' history up to a cutoff some
weeks back, how well do they predict what those buyers bought since?

The calibration and holdout periods of Fader, Hardie & Lee (2005), "Counting your customers
the easy way", section 5: each buyer first seen before the cutoff gives (x, t_x, T) as of the
cutoff and the repeat purchases made after it. The check fits a model on the calibration
part, predicts each buyer's purchases over the holdout length, and compares: the total, and
the mean absolute error per buyer. It can choose between the BG/NBD and the modified BG/NBD.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.domain import btyd
from pipeline.domain.stages import DAY_MS

# One buyer: first paid, last paid, paid orders (epoch ms, count), the payment times the
# ledger holds that are later than the buyer's latest event less the holdout length (in
# order), and the latest payment time the ledger holds before those (None if none).
BuyerRecord = tuple[int, int, int, tuple[int, ...], int | None]
# A buyer as a refit takes them: first paid, last paid (epoch ms), paid orders, free orders,
# gross paid cents, and the two payment fields of a BuyerRecord.
BuyerRow = tuple[int, int, int, int, int, tuple[int, ...], int | None]

MIN_HOLDOUT_BUYERS = 10


@dataclass(frozen=True)
class Holdout:
    """Buyers as of the cutoff (x, t_x, T in days) and their repeat purchases after it."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    actual: np.ndarray
    days: float


def recent_payments(
    paid_times: Iterable[int], latest_event_ms: int, holdout_ms: int
) -> tuple[tuple[int, ...], int | None]:
    """The payment times a holdout check can need from one buyer's ledger: those after
    `latest_event_ms - holdout_ms` (any cutoff of a later clock is after that), in order,
    and the latest one at or before it."""
    bound = latest_event_ms - holdout_ms
    times = sorted(paid_times)
    after = tuple(t for t in times if t > bound)
    before = [t for t in times if t <= bound]
    return after, (before[-1] if before else None)


def split(buyers: Iterable[BuyerRecord], clock_ms: int, holdout_ms: int) -> Holdout:
    """The calibration history and holdout purchases of every buyer first seen at or before
    `clock_ms - holdout_ms` (buyers of the last weeks have no calibration part)."""
    cutoff = clock_ms - holdout_ms
    x: list[int] = []
    t_x: list[float] = []
    T: list[float] = []
    actual: list[int] = []
    for first, last, count, after, before in buyers:
        if first > cutoff:
            continue
        later = sum(1 for t in after if t > cutoff)
        if later == 0:
            last_before = last
        else:
            known = [t for t in after if t <= cutoff]
            last_before = max([first, *known, *([before] if before is not None else [])])
        x.append(max(count - later - 1, 0))
        t_x.append((last_before - first) / DAY_MS)
        T.append((cutoff - first) / DAY_MS)
        actual.append(later)

    def arr(values: list[float] | list[int]) -> np.ndarray:
        return np.asarray(values, dtype=float)

    return Holdout(arr(x), arr(t_x), arr(T), arr(actual), holdout_ms / DAY_MS)


def check(holdout: Holdout, variant: str, l2_penalty: float = 0.0) -> dict[str, Any]:
    """Fit `variant` on the calibration part and compare its predictions over the holdout
    with the purchases made: `{variant, customers, holdout_days, predicted, actual,
    mean_absolute_error}` (purchases, and per customer), or `{variant, error}` when it
    cannot be fitted or there are too few buyers."""
    out: dict[str, Any] = {"variant": variant, "holdout_days": holdout.days}
    n = int(holdout.x.size)
    out["customers"] = n
    if n < MIN_HOLDOUT_BUYERS:
        out["error"] = f"{n} buyers before the cutoff; the check needs {MIN_HOLDOUT_BUYERS}"
        return out
    try:
        params = btyd.fit_bgnbd(
            holdout.x, holdout.t_x, holdout.T, variant=variant, l2_penalty=l2_penalty
        )
    except btyd.FitError as exc:
        out["error"] = str(exc)
        return out
    predicted = btyd.expected_purchases(params, holdout.days, holdout.x, holdout.t_x, holdout.T)
    out["predicted"] = round(float(np.sum(predicted)), 3)
    out["actual"] = int(np.sum(holdout.actual))
    out["mean_absolute_error"] = round(float(np.mean(np.abs(predicted - holdout.actual))), 5)
    return out


def best(checks: list[dict[str, Any]]) -> str | None:
    """The variant whose holdout predictions erred least per customer (None if none could
    be checked); the first listed wins a tie."""
    usable = [c for c in checks if "mean_absolute_error" in c]
    if not usable:
        return None
    return str(min(usable, key=lambda c: c["mean_absolute_error"])["variant"])
