"""The models document the worker publishes to `lifecycle-models` and the API serves."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pipeline.enrich import Enricher
from pipeline.refit import RefitResult

MODELS_KEY = b"models"


def models_document(
    enricher: Enricher, result: RefitResult | None, request_id: str | None = None
) -> dict[str, Any]:
    """Fitted parameters, churn-model quality, versions, and the refit that produced them."""
    models = enricher.models
    # A new version of the RFM scale with every publication: the API scores every document
    # against it, so scores follow the population between a user's events.
    scale = models.population.scale(fresh=True) if len(models.population) else None
    return {
        "btyd": asdict(models.bgnbd) if models.bgnbd else None,
        "gamma_gamma": asdict(models.gamma_gamma) if models.gamma_gamma else None,
        "churn": {
            **enricher.models.churn.metrics(),
            "model": "river LogisticRegression",
            "ready": not (not_ready := enricher.churn_not_ready()),
            "not_ready": not_ready,
            "min_labels": enricher.settings.churn_min_labels,
            "min_auc": enricher.settings.churn_min_auc,
        },
        "versions": enricher.versions(),
        "buyers": len(enricher.buyers),
        "rfm_population": len(models.population),
        "rfm": scale.to_dict() if scale is not None else None,
        "event_clock": (
            datetime.fromtimestamp(enricher.clock_ms / 1000, tz=UTC).isoformat()
            if enricher.clock_ms
            else None
        ),
        # The refit that produced this publication: its customers, its error (then the last
        # good parameters, above, stay in use: `kept_previous`), and its fit's diagnostics.
        "refit": (
            {
                "customers": result.customers,
                "error": result.error,
                "kept_previous": result.error is not None and models.bgnbd is not None,
                "diagnostics": result.diagnostics,
            }
            if result is not None
            else None
        ),
        "request_id": request_id,
        "published_at": datetime.now(tz=UTC).isoformat(),
    }
