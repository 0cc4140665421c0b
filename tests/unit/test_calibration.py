"""Platt scaling of churn probabilities: it recovers a known distortion, improves the
calibration of overconfident probabilities out of sample, and stays the identity without
both classes."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from pipeline.domain.calibration import BinnedCalibration, Platt, held_out_calibration
from pipeline.domain.churn import ChurnModel


def overconfident(n: int, seed: int) -> list[tuple[float, bool]]:
    """Outcomes drawn with P = sigmoid(z), reported as sigmoid(2.5 z + 0.5)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, n)
    churned = rng.random(n) < expit(z)
    return [(float(expit(2.5 * v + 0.5)), bool(c)) for v, c in zip(z, churned, strict=True)]


def test_platt_recovers_the_distortion() -> None:
    fitted = Platt.fit(overconfident(20_000, 1))
    # sigmoid(a logit(p) + b) = sigmoid(z) when a = 1/2.5 and b = -0.5/2.5.
    assert abs(fitted.a - 0.4) < 0.03
    assert abs(fitted.b + 0.2) < 0.05


def test_scaled_probabilities_are_better_calibrated_out_of_sample() -> None:
    pairs = overconfident(4_000, 2)
    raw = BinnedCalibration()
    for p, churned in pairs:
        raw.update(p, churned)
    scaled, folds = held_out_calibration(pairs)
    assert folds == 2
    raw_error, scaled_error = raw.expected_error(), scaled.expected_error()
    assert raw_error is not None
    assert scaled_error is not None
    assert scaled_error < raw_error / 2
    assert scaled.brier() < raw.brier()  # type: ignore[operator]


def test_one_class_keeps_the_identity() -> None:
    fitted = Platt.fit([(0.3, True)] * 50)
    assert (fitted.a, fitted.b, fitted.fitted) == (1.0, 0.0, False)
    # Found in use: 15 labels of a class is enough for the scaling in use but not for each
    # of the two folds of its out-of-sample measure, which then says so.
    pairs = [(0.8, True)] * 60 + [(0.6, False)] * 15
    assert Platt.fit(pairs).fitted
    _, folds = held_out_calibration(pairs)
    assert folds == 0
    assert abs(fitted(0.3) - 0.3) < 1e-9
    assert Platt.fit([])(0.7) == Platt()(0.7)


def test_the_churn_model_reports_its_calibrated_quality() -> None:
    model = ChurnModel()
    rng = np.random.default_rng(3)
    for _ in range(400):
        idle = float(rng.uniform(0, 120))
        model.learn({"idle_days": idle}, bool(rng.random() < idle / 120))
    assert model.metrics()["calibrated"] is None
    before = model.predict({"idle_days": 100.0})
    model.calibrate()
    calibrated = model.metrics()["calibrated"]
    assert calibrated["method"] == "platt"
    assert calibrated["out_of_sample_folds"] == 2
    assert 0 <= calibrated["calibration_error"] <= 1
    assert 0 <= calibrated["brier"] <= 1
    after = model.predict({"idle_days": 100.0})
    assert after != before  # predictions go through the scaling
    restored = ChurnModel.from_bytes(model.to_bytes())
    assert restored.predict({"idle_days": 100.0}) == after
