"""Churn model (SPEC section 4): River-style invariants, learning, labels and features."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from pipeline.domain.churn import ChurnModel, churn_features, label_for, on_silent
from pipeline.domain.stages import Stage


def user(rng: random.Random, churner: bool) -> dict[str, float]:
    """Features of one synthetic user: long idle non-buyers churn, active buyers do not."""
    if churner:
        orders = rng.choice([0, 0, 0, 1])
        return churn_features(
            idle_days=rng.uniform(30, 120),
            tenure_days=rng.uniform(30, 400),
            interactions_30d=rng.randint(0, 3),
            interactions=rng.randint(1, 30),
            orders=orders,
            monetary=rng.uniform(10, 200) * orders,
            engagement=rng.uniform(0, 5),
            days_since_paid=rng.uniform(60, 400) if orders else None,
        )
    orders = rng.randint(1, 20)
    return churn_features(
        idle_days=rng.uniform(0, 40),
        tenure_days=rng.uniform(30, 400),
        interactions_30d=rng.randint(2, 40),
        interactions=rng.randint(20, 500),
        orders=orders,
        monetary=rng.uniform(50, 500) * orders,
        engagement=rng.uniform(2, 100),
        days_since_paid=rng.uniform(0, 90),
    )


def stream(n: int, seed: int, noise: float = 0.05) -> list[tuple[dict[str, float], bool]]:
    """`n` labelled examples, about 40% churners, a fraction `noise` of labels flipped."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        churner = rng.random() < 0.4
        x = user(rng, churner)
        out.append((x, churner != (rng.random() < noise)))
    return out


def trained(n: int = 300, seed: int = 1) -> ChurnModel:
    model = ChurnModel()
    for x, y in stream(n, seed):
        model.learn(x, y)
    return model


SAMPLE = churn_features(
    idle_days=45.0,
    tenure_days=200.0,
    interactions_30d=1,
    interactions=12,
    orders=0,
    monetary=0.0,
    engagement=0.5,
    days_since_paid=None,
)


# -- River-style invariants ----------------------------------------------------------------


def test_hyperparameters_stored_unchanged() -> None:
    model = ChurnModel(learning_rate=0.1, l2=0.001)
    assert (model.learning_rate, model.l2) == (0.1, 0.001)


def test_predicts_before_first_learn() -> None:
    model = ChurnModel()
    assert model.predict(SAMPLE) == pytest.approx(0.5)
    assert model.metrics() == {
        "log_loss": 0.0,
        "roc_auc": None,  # no AUC without labels of both classes
        "brier": None,
        "calibration_error": None,
        "labels": 0,
        "positives": 0,
        "calibrated": None,
    }
    assert model.version == "churn-logreg-0"
    for _ in range(5):  # labels of one class only: still no AUC (River would say 0)
        model.learn(SAMPLE, True)
    assert model.metrics()["roc_auc"] is None  # (nor River's -0.0 of no labels, in JSON)


@pytest.mark.parametrize("n", [0, 1, 300])
def test_predict_does_not_change_state(n: int) -> None:
    model = trained(n)
    untouched = ChurnModel.from_bytes(model.to_bytes())
    metrics, version = model.metrics(), model.version
    probe = stream(50, seed=9)
    first = [model.predict(x) for x, _ in probe]
    assert [model.predict(x) for x, _ in probe] == first
    assert model.metrics() == metrics
    assert model.version == version
    # River's pipeline caches its plan and the scaler's defaultdicts gain zero entries on
    # lookup, so the pickled bytes may differ; what matters is that nothing learnt differs:
    # a copy that never predicted keeps predicting and learning identically.
    assert [untouched.predict(x) for x, _ in probe] == first
    for x, y in stream(20, seed=10):
        model.learn(x, y)
        untouched.learn(x, y)
    assert untouched.metrics() == model.metrics()
    assert [untouched.predict(x) for x, _ in probe] == [model.predict(x) for x, _ in probe]


def test_predict_does_not_mutate_features() -> None:
    x = dict(SAMPLE)
    model = trained(20)
    model.predict(x)
    model.learn(x, True)
    assert x == SAMPLE


def test_learning_changes_version_and_counts() -> None:
    model = ChurnModel()
    versions = {model.version}
    for i, (x, y) in enumerate(stream(10, seed=3), start=1):
        model.learn(x, y)
        versions.add(model.version)
        assert model.labels == model.metrics()["labels"] == i
    assert len(versions) == 11
    assert model.metrics()["positives"] == sum(y for _, y in stream(10, seed=3))


@pytest.mark.parametrize("n", [0, 1, 300])
def test_bytes_round_trip(n: int) -> None:
    model = trained(n)
    copy = ChurnModel.from_bytes(model.to_bytes())
    assert copy is not model
    assert (copy.learning_rate, copy.l2, copy.version) == (
        model.learning_rate,
        model.l2,
        model.version,
    )
    assert copy.metrics() == model.metrics()
    probe = stream(50, seed=9)
    assert [copy.predict(x) for x, _ in probe] == [model.predict(x) for x, _ in probe]
    # They keep learning identically too.
    for x, y in stream(20, seed=10):
        model.learn(x, y)
        copy.learn(x, y)
    assert copy.metrics() == model.metrics()
    assert [copy.predict(x) for x, _ in probe] == [model.predict(x) for x, _ in probe]


def test_from_bytes_rejects_other_objects() -> None:
    import pickle

    with pytest.raises(TypeError):
        ChurnModel.from_bytes(pickle.dumps({"not": "a model"}))


# -- learning ------------------------------------------------------------------------------


def test_learns_separable_stream_with_progressive_validation() -> None:
    model = ChurnModel()
    data = stream(3000, seed=42)
    for x, y in data:
        model.learn(x, y)
    m = model.metrics()
    assert m["labels"] == 3000
    assert m["positives"] == sum(y for _, y in data)
    assert m["roc_auc"] > 0.8
    assert m["log_loss"] < math.log(2)
    # Out of sample, the learnt model ranks churners above non-churners.
    held_out = stream(500, seed=43, noise=0.0)
    churn_p = [model.predict(x) for x, y in held_out if y]
    stay_p = [model.predict(x) for x, y in held_out if not y]
    assert sum(churn_p) / len(churn_p) > 0.7
    assert sum(stay_p) / len(stay_p) < 0.3


# -- labels --------------------------------------------------------------------------------

STAGES: list[str | None] = [None, *(s.value for s in Stage)]


@pytest.mark.parametrize("from_stage", STAGES)
@pytest.mark.parametrize("to_stage", [s.value for s in Stage])
def test_label_for_truth_table(from_stage: str | None, to_stage: str) -> None:
    expected: bool | None = None
    if from_stage == "silent" and to_stage == "churned":
        expected = True
    elif from_stage == "silent" and to_stage in {"potential", "new", "active"}:
        expected = False
    assert label_for(from_stage, to_stage) is expected


def test_label_for_accepts_stage_enum() -> None:
    assert label_for(Stage.SILENT, Stage.CHURNED) is True
    assert label_for(Stage.SILENT, Stage.ACTIVE) is False
    assert label_for(Stage.CHURNED, Stage.ACTIVE) is None


def test_on_silent_snapshot_is_a_json_friendly_copy() -> None:
    import json

    snapshot = on_silent(SAMPLE)
    assert snapshot == SAMPLE
    assert snapshot is not SAMPLE
    assert json.loads(json.dumps(snapshot)) == snapshot


# -- features ------------------------------------------------------------------------------

EXTREMES: list[dict[str, Any]] = [
    {"idle_days": 0.0, "tenure_days": 0.0, "interactions_30d": 0, "interactions": 0,
     "orders": 0, "monetary": 0.0, "engagement": 0.0, "days_since_paid": None},
    {"idle_days": 1e300, "tenure_days": 1e300, "interactions_30d": 10**30,
     "interactions": 10**30, "orders": 10**30, "monetary": 1e300, "engagement": 1e300,
     "days_since_paid": 1e300},
    {"idle_days": math.inf, "tenure_days": math.inf, "interactions_30d": 10**9,
     "interactions": 10**9, "orders": 10**9, "monetary": math.inf, "engagement": math.inf,
     "days_since_paid": math.inf},
    {"idle_days": -5.0, "tenure_days": math.nan, "interactions_30d": -1, "interactions": -1,
     "orders": -1, "monetary": -1e9, "engagement": math.nan, "days_since_paid": -3.0},
    {"idle_days": 0.0, "tenure_days": 0.0, "interactions_30d": 0, "interactions": 0,
     "orders": 0, "monetary": 0.0, "engagement": 0.0, "days_since_paid": 0.0},
]  # fmt: skip


@pytest.mark.parametrize("raw", EXTREMES)
def test_features_finite_and_bounded(raw: dict[str, Any]) -> None:
    x = churn_features(**raw)
    assert all(isinstance(v, float) and math.isfinite(v) for v in x.values())
    assert all(0.0 <= v <= 365.0 for v in x.values())
    assert 0.0 <= x["idle_days"] <= 365.0
    assert 0.0 <= x["tenure_days"] <= 365.0
    assert 0.0 <= x["days_since_paid"] <= 365.0
    assert x["has_paid"] == (0.0 if raw["days_since_paid"] is None else 1.0)
    model = ChurnModel()
    model.learn(x, True)
    assert 0.0 <= model.predict(x) <= 1.0


def test_never_paid_looks_like_paid_long_ago() -> None:
    never = churn_features(**EXTREMES[0])
    assert never["days_since_paid"] == 365.0
    assert never["has_paid"] == 0.0
    just_paid = churn_features(**{**EXTREMES[0], "days_since_paid": 0.0})
    assert just_paid["days_since_paid"] == 0.0
    assert just_paid["has_paid"] == 1.0


def test_features_are_monotone_in_counts_and_money() -> None:
    small = churn_features(**{**EXTREMES[0], "orders": 1, "monetary": 10.0})
    large = churn_features(**{**EXTREMES[0], "orders": 5, "monetary": 1000.0})
    assert large["log_orders"] > small["log_orders"]
    assert large["log_monetary"] > small["log_monetary"]


def test_not_ready_until_it_has_labels_of_both_classes_and_ranks_them() -> None:
    # The demo's case: users returning from silence are labelled long before the first one
    # churns (90 days); a model that has only seen "returned" scores everyone alike.
    rng = random.Random(7)
    model = ChurnModel()
    assert model.readiness(30, 0.7) == [
        "0 churned labels of the 30 needed",
        "0 returned labels of the 30 needed",
    ]
    for _ in range(200):
        model.learn(user(rng, False), False)
    assert model.readiness(30, 0.7) == ["0 churned labels of the 30 needed"]
    for _ in range(29):
        model.learn(user(rng, True), True)
    assert model.readiness(30, 0.7) == ["29 churned labels of the 30 needed"]
    for i in range(200):
        model.learn(user(rng, i % 2 == 0), i % 2 == 0)
    assert model.readiness(30, 0.7) == []


def test_not_ready_when_it_cannot_tell_the_classes_apart() -> None:
    # Labels at random: both classes plentiful, but the ranking is no better than chance.
    rng = random.Random(3)
    model = ChurnModel()
    for _ in range(400):
        model.learn(user(rng, rng.random() < 0.5), rng.random() < 0.5)
    (why,) = model.readiness(30, 0.7)
    assert why.startswith("progressive ROC AUC 0.")
    assert why.endswith("below 0.700")


def test_calibration_is_measured_progressively() -> None:
    rng = random.Random(11)
    model = ChurnModel()
    assert model.metrics()["brier"] is None
    assert model.metrics()["calibration_error"] is None
    for i in range(2000):
        churner = i % 3 == 0
        model.learn(user(rng, churner), churner)
    figures = model.metrics()
    # A separable stream: probabilities end up near 0 and 1 where they belong.
    assert figures["brier"] is not None
    assert 0.0 <= figures["brier"] < 0.1
    assert figures["calibration_error"] is not None
    assert 0.0 <= figures["calibration_error"] < 0.1


def test_a_model_pickled_before_calibration_was_kept_still_loads() -> None:
    model = ChurnModel()
    model.learn(user(random.Random(1), True), True)
    del model.__dict__["_calibration"]
    restored = ChurnModel.from_bytes(model.to_bytes())
    assert restored.labels == 1
    assert restored.metrics()["brier"] is None  # starts empty
