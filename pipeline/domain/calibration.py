"""Calibration of churn probabilities: how well they match the share of users who churned
(binned, with the Brier score), and Platt scaling to make them match.

Platt scaling (Platt 1999; Niculescu-Mizil & Caruana 2005): p' = sigmoid(a logit(p) + b),
the two parameters fitted by maximum likelihood on the model's progressive predictions
(each made before the model learnt that label), so the calibration is learnt on predictions
the model had not trained on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logit

CALIBRATION_BINS = 10
_EPS = 1e-6


class BinnedCalibration:
    """Progressive calibration: per probability bin, the predictions' mean against the
    share of churned labels (the expected calibration error weighs each bin's gap by its
    labels), and the Brier score (mean squared error of the probabilities)."""

    def __init__(self) -> None:
        self.count = [0] * CALIBRATION_BINS
        self.predicted = [0.0] * CALIBRATION_BINS
        self.churned = [0] * CALIBRATION_BINS
        self.squared_error = 0.0

    def update(self, p: float, churned: bool) -> None:
        k = min(int(p * CALIBRATION_BINS), CALIBRATION_BINS - 1)
        self.count[k] += 1
        self.predicted[k] += p
        self.churned[k] += int(churned)
        self.squared_error += (p - float(churned)) ** 2

    def brier(self) -> float | None:
        n = sum(self.count)
        return self.squared_error / n if n else None

    def expected_error(self) -> float | None:
        n = sum(self.count)
        if not n:
            return None
        return sum(abs(p - c) for p, c in zip(self.predicted, self.churned, strict=True)) / n


class Platt:
    """p' = sigmoid(a logit(p) + b); the identity (a 1, b 0) until fitted."""

    MIN_PER_CLASS = 10

    def __init__(self, a: float = 1.0, b: float = 0.0, fitted: bool = False) -> None:
        self.a, self.b = a, b
        self.fitted = fitted  # False: the identity (too few labels of a class)

    def __call__(self, p: float) -> float:
        q = min(max(p, _EPS), 1 - _EPS)
        return float(expit(self.a * math.log(q / (1 - q)) + self.b))

    @classmethod
    def fit(cls, pairs: Sequence[tuple[float, bool]]) -> Platt:
        """Fitted on (predicted probability, churned) pairs; the identity with fewer than
        `MIN_PER_CLASS` of either class. A weak pull towards the identity keeps a and b
        finite when the classes are separated."""
        y = np.array([float(c) for _, c in pairs])
        if len(y) == 0 or min(y.sum(), len(y) - y.sum()) < cls.MIN_PER_CLASS:
            return cls()
        x = logit(np.clip(np.array([p for p, _ in pairs]), _EPS, 1 - _EPS))

        def loss(theta: np.ndarray) -> float:
            z = theta[0] * x + theta[1]
            nll = np.logaddexp(0, z) - y * z
            return float(nll.mean() + 1e-3 * ((theta[0] - 1) ** 2 + theta[1] ** 2))

        a, b = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B").x
        return cls(float(a), float(b), fitted=True)


def held_out_calibration(pairs: Sequence[tuple[float, bool]]) -> tuple[BinnedCalibration, int]:
    """The calibration of Platt-scaled probabilities measured out of sample: scaling fitted
    on every other pair and measured on the rest, both ways; and in how many of the two
    folds there were enough labels to fit it (in the others the identity is measured)."""
    out = BinnedCalibration()
    fitted_folds = 0
    for fold in (0, 1):
        fitted = Platt.fit([pair for i, pair in enumerate(pairs) if i % 2 != fold])
        fitted_folds += int(fitted.fitted)
        for i, (p, churned) in enumerate(pairs):
            if i % 2 == fold:
                out.update(fitted(p), churned)
    return out, fitted_folds
