"""The population models' readiness, quality and refit age as metrics, from the models
document the leader publishes (`pipeline.leader.fit_population`)."""

from __future__ import annotations

import contextlib
import math
import time
from datetime import datetime
from typing import Any

from pipeline import metrics
from pipeline.settings import Settings

MODELS = ("churn", "btyd", "rfm")
CHURN_MEASURES = ("roc_auc", "brier", "calibration_error", "log_loss")


def models_unpublished(settings: Settings) -> None:
    """At start, before any publication is adopted: no model acts yet."""
    metrics.MODEL_REFIT_INTERVAL.set(settings.model_refit_seconds)
    metrics.MODEL_QUALITY_FLOOR.labels("churn", "roc_auc").set(settings.churn_min_auc)
    for model in MODELS:
        metrics.MODEL_READY.labels(model).set(0)


def models_adopted(document: dict[str, Any]) -> None:
    """The gauges of the models document now in use."""
    churn = document.get("churn") or {}
    metrics.MODEL_READY.labels("churn").set(1 if churn.get("ready") else 0)
    metrics.MODEL_READY.labels("btyd").set(1 if document.get("btyd") else 0)
    metrics.MODEL_READY.labels("rfm").set(1 if document.get("rfm") else 0)
    if "min_auc" in churn:
        metrics.MODEL_QUALITY_FLOOR.labels("churn", "roc_auc").set(float(churn["min_auc"]))
    labels, positives = int(churn.get("labels") or 0), int(churn.get("positives") or 0)
    measurable = 0 < positives < labels  # both classes: a ROC AUC of one class is 0, not a score
    for measure in CHURN_MEASURES:
        value = churn.get(measure)
        if measurable and isinstance(value, int | float) and math.isfinite(value):
            metrics.MODEL_QUALITY.labels("churn", measure).set(float(value))
        else:  # no figure rather than a placeholder an alert would take for a bad model
            with contextlib.suppress(KeyError):
                metrics.MODEL_QUALITY.remove("churn", measure)
    refit = document.get("refit") or {}
    if refit.get("kept_previous"):
        metrics.MODEL_REFITS_KEPT.inc()
    try:
        published = datetime.fromisoformat(str(document["published_at"])).timestamp()
    except (KeyError, ValueError):
        return
    metrics.MODEL_PUBLISHED.set(published)
    metrics.MODEL_REFIT_AGE.set_function(lambda: max(0.0, time.time() - published))
