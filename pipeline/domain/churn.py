"""Churn probability (SPEC section 4): an online River classifier fed by delayed stage labels."""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from typing import Any

from river import compose, linear_model, metrics, optim, preprocessing

from pipeline.domain.calibration import BinnedCalibration, Platt, held_out_calibration
from pipeline.domain.stages import Stage

MAX_DAYS = 365.0
MAX_COUNT = 1e6
MAX_MONEY = 1e12
_PICKLE_PROTOCOL = 5
_NOT_CHURNED_FROM_SILENT = frozenset({Stage.POTENTIAL, Stage.NEW, Stage.ACTIVE})


def _clip(value: float, high: float) -> float:
    """`value` clamped into [0, high]; NaN counts as 0."""
    if math.isnan(value):
        return 0.0
    return min(max(float(value), 0.0), high)


def churn_features(
    *,
    idle_days: float,
    tenure_days: float,
    interactions_30d: int,
    interactions: int,
    orders: int,
    monetary: float,
    engagement: float,
    days_since_paid: float | None,
) -> dict[str, float]:
    """Bounded, finite features of one user; counts and money on a log scale."""
    return {
        "idle_days": _clip(idle_days, MAX_DAYS),
        "tenure_days": _clip(tenure_days, MAX_DAYS),
        "log_interactions_30d": math.log1p(_clip(interactions_30d, MAX_COUNT)),
        "log_interactions": math.log1p(_clip(interactions, MAX_COUNT)),
        "log_orders": math.log1p(_clip(orders, MAX_COUNT)),
        "log_monetary": math.log1p(_clip(monetary, MAX_MONEY)),
        "log_engagement": math.log1p(_clip(engagement, MAX_MONEY)),
        "has_paid": 0.0 if days_since_paid is None else 1.0,
        "days_since_paid": MAX_DAYS
        if days_since_paid is None
        else _clip(days_since_paid, MAX_DAYS),
    }


MAX_PAIRS = 20_000  # progressive predictions kept for calibration (the latest)


class ChurnModel:
    """Standardised logistic regression learning online, with progressive validation: each
    label is first scored by the model as it is, then learnt (log loss, ROC AUC, the Brier
    score and the expected calibration error over ten probability bins)."""

    def __init__(self, learning_rate: float = 0.05, l2: float = 0.0) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self._model: Any = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=l2),
        )
        self._log_loss: Any = metrics.LogLoss()  # type: ignore[no-untyped-call]
        self._roc_auc: Any = metrics.ROCAUC()  # type: ignore[no-untyped-call]
        self._labels = 0
        self._positives = 0
        self._calibration = BinnedCalibration()
        # Progressive (prediction, churned) pairs, and the Platt scaling fitted on them.
        self._pairs: list[tuple[float, bool]] = []
        self._platt = Platt()
        self._calibrated: BinnedCalibration | None = None
        self._calibrated_folds = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Models pickled before calibration was kept start it empty."""
        self.__dict__.update(state)
        self.__dict__.setdefault("_calibration", BinnedCalibration())
        self.__dict__.setdefault("_pairs", [])
        self.__dict__.setdefault("_platt", Platt())
        self.__dict__.setdefault("_calibrated", None)
        self.__dict__.setdefault("_calibrated_folds", 0)

    def predict(self, features: Mapping[str, float]) -> float:
        """Probability of churn, Platt-scaled once `calibrate` has run; 0.5 before any
        learning. Does not change state."""
        proba: dict[Any, float] = self._model.predict_proba_one(dict(features))
        return self._platt(float(proba.get(True, 0.0)))

    def calibrate(self) -> None:
        """Fit Platt scaling on the progressive predictions so far (the identity until
        there are enough of both classes), and measure it out of sample."""
        self._platt = Platt.fit(self._pairs)
        self._calibrated, self._calibrated_folds = held_out_calibration(self._pairs)

    def learn(self, features: Mapping[str, float], churned: bool) -> None:
        """Score the example (progressive validation), then learn from it."""
        x = dict(features)
        y = bool(churned)
        p = float(self._model.predict_proba_one(x).get(True, 0.0))
        self._log_loss.update(y, p)
        self._roc_auc.update(y, p)
        self._calibration.update(p, y)
        self._pairs.append((p, y))
        del self._pairs[:-MAX_PAIRS]
        self._model.learn_one(x, y)
        self._labels += 1
        self._positives += int(y)

    def readiness(self, min_per_class: int, min_auc: float) -> list[str]:
        """Why the model is not ready to act on (fire triggers, fill documents): too few
        labels of either class, or a progressive ROC AUC below `min_auc`; empty when ready."""
        why = []
        negatives = self._labels - self._positives
        if self._positives < min_per_class:
            why.append(f"{self._positives} churned labels of the {min_per_class} needed")
        if negatives < min_per_class:
            why.append(f"{negatives} returned labels of the {min_per_class} needed")
        auc = float(self._roc_auc.get()) + 0.0
        if not why and auc < min_auc:
            why.append(f"progressive ROC AUC {auc:.3f} below {min_auc:.3f}")
        return why

    def metrics(self) -> dict[str, Any]:
        """Progressive-validation quality and label counts (`roc_auc` None until there are
        labels of both classes); `calibrated`: the Brier score
        and calibration error of the Platt-scaled probabilities, measured out of sample
        (two folds), with the scaling's a and b (None before `calibrate`)."""
        calibrated = self._calibrated
        return {
            "log_loss": float(self._log_loss.get()) + 0.0,
            # No AUC without labels of both classes (River answers 0 then, which reads as a
            # model worse than guessing).
            "roc_auc": float(self._roc_auc.get()) + 0.0
            if 0 < self._positives < self._labels
            else None,
            "brier": self._calibration.brier(),
            "calibration_error": self._calibration.expected_error(),
            "labels": self._labels,
            "positives": self._positives,
            "calibrated": None
            if calibrated is None
            else {
                "method": "platt",
                "a": round(self._platt.a, 6),
                "b": round(self._platt.b, 6),
                # Of the two folds the out-of-sample figures come from, those with enough
                # labels of each class to fit the scaling (the others measure the identity).
                "out_of_sample_folds": self._calibrated_folds,
                "brier": calibrated.brier(),
                "calibration_error": calibrated.expected_error(),
            },
        }

    @property
    def labels(self) -> int:
        """Number of labels learnt so far."""
        return self._labels

    @property
    def version(self) -> str:
        """Identifies the learnt state: changes with every label."""
        return f"churn-logreg-{self._labels}"

    def to_bytes(self) -> bytes:
        """The whole model and its metrics, pickled."""
        return pickle.dumps(self, protocol=_PICKLE_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> ChurnModel:
        """Inverse of `to_bytes` (trusted data only: this unpickles)."""
        model = pickle.loads(data)
        if not isinstance(model, cls):
            raise TypeError(f"expected a pickled {cls.__name__}, got {type(model).__name__}")
        return model


def on_silent(features: Mapping[str, float]) -> dict[str, float]:
    """Snapshot of the features to keep in the user state when the user turns silent."""
    return {str(k): float(v) for k, v in features.items()}


def label_for(from_stage: str | None, to_stage: str) -> bool | None:
    """Label of a stage transition, for the snapshot taken at the silent transition.

    silent -> churned is True (churned); silent -> potential/new/active is False (came back
    before churning); anything else resolves nothing (None).
    """
    if from_stage != Stage.SILENT:
        return None
    if to_stage == Stage.CHURNED:
        return True
    if to_stage in _NOT_CHURNED_FROM_SILENT:
        return False
    return None
