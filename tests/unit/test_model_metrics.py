"""The models' metrics from a published models document: readiness, quality only when it is
measured (labels of both classes), refit age."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from agents.model_metrics import models_adopted
from pipeline import metrics


def quality() -> dict[str, float]:
    return {
        s.labels["measure"]: s.value
        for family in metrics.MODEL_QUALITY.collect() for s in family.samples
    }  # fmt: skip


def document(labels: int, positives: int, auc: float, ready: bool) -> dict[str, object]:
    return {
        "churn": {"labels": labels, "positives": positives, "roc_auc": auc, "brier": 0.2,
                  "calibration_error": 0.1, "log_loss": 0.6, "ready": ready, "min_auc": 0.7},
        "btyd": {"r": 1.0}, "rfm": None, "refit": {"kept_previous": False},
        "published_at": datetime.fromtimestamp(time.time() - 30, tz=UTC).isoformat(),
    }  # fmt: skip


def ready(model: str) -> float:
    return metrics.MODEL_READY.labels(model)._value.get()  # type: ignore[no-any-return]


def test_one_class_of_labels_gives_no_quality_figure_a_second_class_does() -> None:
    models_adopted(document(90, 0, 0.0, ready=False))  # River's AUC of one class: 0
    assert quality() == {}
    assert (ready("churn"), ready("btyd"), ready("rfm")) == (0, 1, 0)
    models_adopted(document(120, 40, 0.62, ready=False))
    assert quality()["roc_auc"] == 0.62
    assert metrics.MODEL_QUALITY_FLOOR.labels("churn", "roc_auc")._value.get() == 0.7
    age = metrics.MODEL_REFIT_AGE.collect()[0].samples[0].value
    assert 29 <= age <= 60
    models_adopted(document(120, 120, 0.0, ready=False))  # one class again: the figure goes
    assert quality() == {}
