"""Models of the whole population: each partition's summary, the leader's fit on the merge
of every partition's, and a worker adopting what the leader published.

Every worker publishes a summary of each partition it owns (`population.Summary`) to the
compacted population topic, keyed by partition. The worker that owns partition 0 of the
input topics is the model leader: it merges the latest summary of every partition, fits the
RFM scale, BG/NBD and Gamma-Gamma, and the churn model, and publishes them on the models
topic; every worker, the leader included, scores on what was published. So every document
is scored on one set of models, whichever worker owns the user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pipeline.domain import btyd, btyd_holdout, spend
from pipeline.domain.btyd_holdout import BuyerRow
from pipeline.domain.churn import ChurnModel
from pipeline.domain.orders import TS_AT
from pipeline.domain.population import Label, Summary, summarise, user_hash
from pipeline.domain.profile import Models
from pipeline.domain.rfm_scale import RfmScale, thresholds
from pipeline.domain.stages import DAY_MS
from pipeline.domain.state import UserState
from pipeline.refit import RefitResult, fit, inputs_of
from pipeline.settings import Settings

MODELS_KEY = b"models"  # the models document (JSON)
CHURN_MODEL_KEY = b"churn-model"  # the churn model (pickled)


def buyer_row(user: UserState, holdout_ms: int) -> BuyerRow | None:
    """The user as the purchase models see them; None before a paid order."""
    if user.first_paid_ms is None or user.last_paid_ms is None:
        return None
    after, before = btyd_holdout.recent_payments(
        (entry[TS_AT] for entry in user.orders.values()),
        user.last_event_ms or user.last_paid_ms,
        holdout_ms,
    )
    return (
        user.first_paid_ms, user.last_paid_ms, user.order_count, user.free_orders,
        user.paid_cents, after, before,
    )  # fmt: skip


def partition_summary(users: Iterable[UserState], settings: Settings) -> Summary:
    """The summary of one partition's users (a function of those users only)."""
    holdout_ms = int(settings.btyd_holdout_days * DAY_MS)
    rfm: list[tuple[int, int, int]] = []
    buyers: list[tuple[str, BuyerRow]] = []
    labels: list[Label] = []
    clock, count = 0, 0
    for user in users:
        count += 1
        clock = max(clock, user.last_event_ms or 0)
        row = buyer_row(user, holdout_ms)
        if row is not None:
            buyers.append((user.user_id, row))
        if user.order_count >= 1 and user.last_paid_ms is not None:
            rfm.append((user.last_paid_ms // DAY_MS, user.order_count, user.monetary_cents))
        if user.churn_labels:
            hashed = user_hash(user.user_id)
            labels += [(int(at), hashed, dict(f), int(y)) for at, y, f in user.churn_labels]
    return summarise(
        rfm, buyers, labels, clock, count, settings.btyd_sample_buyers, settings.churn_max_labels
    )


def fit_population(
    summary: Summary, settings: Settings, previous: Models, request_id: str | None
) -> tuple[dict[str, Any], bytes]:
    """The models document and the pickled churn model the leader publishes, fitted on the
    merged summary (pure: it runs in a thread). A purchase fit the data cannot support keeps
    the previous parameters, as a worker's own refit does."""
    holdout_ms = int(settings.btyd_holdout_days * DAY_MS)
    rows = [row for _, row in summary.sample]
    if rows:
        inputs = inputs_of(rows, summary.clock_ms, holdout_ms)
        result = fit(inputs, previous.bgnbd, settings.btyd_model, settings.btyd_l2_penalty)
    else:
        result = RefitResult(None, None, 0, "no buyer yet")
    bgnbd, gamma_gamma, btyd_version = previous.bgnbd, previous.gamma_gamma, previous.btyd_version
    if result.error is None and result.bgnbd is not None:
        bgnbd, gamma_gamma, btyd_version = result.bgnbd, result.gamma_gamma, btyd_version + 1
    churn = ChurnModel()
    for _, _, features, churned in summary.labels:  # oldest first: the same order everywhere
        churn.learn(features, bool(churned))
    churn.calibrate()
    version = (previous.scale.version if previous.scale else 0) + 1
    scale = None
    if summary.buyers >= max(1, settings.rfm_min_buyers):
        scale = RfmScale(
            recency=thresholds(summary.items("recency")),
            frequency=thresholds(summary.items("frequency")),
            monetary=thresholds(summary.items("monetary")),
            version=version,
            buyers=summary.buyers,
        )
    not_ready = churn.readiness(settings.churn_min_labels, settings.churn_min_auc)
    document = {
        "btyd": asdict(bgnbd) if bgnbd else None,
        "gamma_gamma": asdict(gamma_gamma) if gamma_gamma else None,
        "churn": {
            **churn.metrics(),
            "model": "river LogisticRegression",
            "ready": not not_ready,
            "not_ready": not_ready,
            "min_labels": settings.churn_min_labels,
            "min_auc": settings.churn_min_auc,
        },
        "versions": {
            "churn": churn.version,
            "btyd": f"btyd-{btyd_version}",
            "rfm": f"rfm-{scale.version if scale else 0}",
        },
        "buyers": summary.buyers,
        "rfm_population": summary.buyers,
        "rfm": scale.to_dict() if scale is not None else None,
        "event_clock": (
            datetime.fromtimestamp(summary.clock_ms / 1000, tz=UTC).isoformat()
            if summary.clock_ms
            else None
        ),
        "population": {
            "users": summary.users,
            "buyers_sampled": len(rows),
            "labels": len(summary.labels),
        },
        "refit": {
            "customers": result.customers,
            "error": result.error,
            "kept_previous": result.error is not None and bgnbd is not None,
            "diagnostics": result.diagnostics,
        },
        "request_id": request_id,
        "published_at": datetime.now(tz=UTC).isoformat(),
    }
    return document, churn.to_bytes()


def adopt(models: Models, document: dict[str, Any], churn: bytes | None) -> None:
    """Score on the models the leader published from now on."""
    if document.get("btyd"):
        models.bgnbd = btyd.BgNbdParams(**document["btyd"])
    if document.get("gamma_gamma"):
        models.gamma_gamma = spend.GammaGammaParams(**document["gamma_gamma"])
    models.btyd_version = int(str(document["versions"]["btyd"]).rsplit("-", 1)[1])
    models.scale = RfmScale.from_dict(document["rfm"]) if document.get("rfm") else None
    if churn is not None:
        models.churn = ChurnModel.from_bytes(churn)
    models.published = True
