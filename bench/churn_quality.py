"""Churn model quality on held-out users of the demo's simulated shop (issue 16, case 6).

    python -m bench.churn_quality --users 2000 --days 240

The demo's history goes through the real scorer in event-time order, swept like a worker
sweeps its partitions, and every churn label the stage rules resolve (a user silent, then
churned or back) is recorded with the features kept when the user went silent. Users are
split by id into a training set (80%) and held-out users (20%); a fresh model learns the
training labels in the order they came and is measured on the held-out users' labels only:
ROC AUC, accuracy at 0.5 against the share of the larger class (what always answering it
scores), Brier score. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from river import metrics

from pipeline.demo import topics_of
from pipeline.demo_model import World, utc_midnight
from pipeline.domain.churn import ChurnModel
from pipeline.domain.history import Transition
from pipeline.domain.state import UserState
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.store import UserStore


class Recorder(ChurnModel):
    """The scorer's churn model, which also keeps every label it learns, with its user."""

    def __init__(self) -> None:
        super().__init__()
        self.user_id = ""  # the user whose transitions are being resolved
        self.labels_seen: list[tuple[str, dict[str, float], bool]] = []

    def learn(self, features: Mapping[str, float], churned: bool) -> None:
        self.labels_seen.append((self.user_id, dict(features), bool(churned)))
        super().learn(features, churned)


def held_out(user_id: str) -> bool:
    return hashlib.blake2b(user_id.encode(), digest_size=2).digest()[0] < 256 * 0.2


def labels_of_the_demo(
    users: int, days: int, seed: int
) -> list[tuple[str, dict[str, float], bool]]:
    """(user, features at silence, churned) for every label of `days` of the demo's shop."""
    settings = Settings(clickhouse_url="memory://")
    topics = topics_of(settings)
    scorer = Scorer(settings, UserStore())
    recorder = Recorder()
    enricher = scorer.enricher
    enricher.models.churn = recorder
    resolve = enricher.on_transitions

    def on_transitions(user: UserState, transitions: list[Transition]) -> None:
        recorder.user_id = user.user_id
        resolve(user, transitions)

    enricher.on_transitions = on_transitions  # type: ignore[method-assign]
    now = datetime.now(tz=UTC)
    start = utc_midnight(now) - timedelta(days=days)
    world = World(users, start, days, seed)
    for d in range(days):
        for event in world.day(start + timedelta(days=d)):
            if event.ts < now:
                raw = event.model_dump_json(exclude_none=True).encode()
                scorer.score(topics[type(event)], raw, now=now)
        scorer.sweep(0, now=now, documents=False)  # the day's idle users, as a worker does
    return recorder.labels_seen


def evaluate(users: int, days: int, seed: int) -> dict[str, Any]:
    labels = labels_of_the_demo(users, days, seed)
    train = [(f, y) for u, f, y in labels if not held_out(u)]
    test = [(f, y) for u, f, y in labels if held_out(u)]
    model = ChurnModel()
    for features, churned in train:
        model.learn(features, churned)
    auc: Any = metrics.ROCAUC()  # type: ignore[no-untyped-call]
    right = 0
    squared = 0.0
    for features, churned in test:
        p = model.predict(features)
        auc.update(churned, p)
        right += (p >= 0.5) == churned
        squared += (p - churned) ** 2
    positives = sum(y for _, y in test)
    return {
        "users": users,
        "days": days,
        "labels_train": len(train),
        "labels_held_out": len(test),
        "churned_share_held_out": round(positives / max(1, len(test)), 3),
        "roc_auc": round(float(auc.get()), 3),
        "accuracy": round(right / max(1, len(test)), 3),
        "accuracy_of_the_larger_class": round(
            max(positives, len(test) - positives) / max(1, len(test)), 3
        ),
        "brier": round(squared / max(1, len(test)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=240)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(orjson.dumps(evaluate(args.users, args.days, args.seed)).decode())


if __name__ == "__main__":
    main()
