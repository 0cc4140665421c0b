"""The streaming scorer ends where the offline reference scorer does, on demo traffic."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pipeline.demo import topics_of
from pipeline.demo_model import World, utc_midnight
from pipeline.reference import Reference, reference_scores
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from schemas.validation import Rejection

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def workload(users: int, days: int, seed: int) -> list[tuple[str, bytes]]:
    settings = Settings(clickhouse_url="memory://")
    topics = topics_of(settings)
    start = utc_midnight(NOW) - timedelta(days=days)
    world = World(users, start, days, seed)
    events = [e for d in range(days) for e in world.day(start + timedelta(days=d))]
    events.sort(key=lambda e: e.ts)
    messages = [(topics[type(e)], e.model_dump_json(exclude_none=True).encode()) for e in events]
    rng = random.Random(seed)
    for _ in range(len(messages) // 50):
        # A producer resends: the copy comes soon after the original (within the horizon).
        original = rng.randrange(len(messages))
        later = min(len(messages), original + 1 + rng.randrange(200))
        messages.insert(later, messages[original])
    messages.insert(rng.randrange(len(messages)), ("order-events", b"{broken"))
    return messages


def compare(document: dict[str, Any], ref: Reference) -> None:
    assert document["stage"] == (ref.stage.value if ref.stage else None)
    assert document["stage_since"] == ref.at(ref.stage_since_ms)
    assert document["reactivations"] == ref.reactivations
    assert document["interactions"] == len(ref.interactions)
    assert document["order_count"] == ref.order_count
    assert document["refund_count"] == ref.refunds
    assert document["monetary"] == pytest.approx(ref.monetary_cents / 100)
    assert document["last_event_at"] == ref.at(ref.last_event_ms)


@pytest.mark.parametrize("seed", [3, 11])
def test_streaming_equals_reference_on_demo_traffic(seed: int) -> None:
    settings = Settings(clickhouse_url="memory://")
    messages = workload(users=120, days=150, seed=seed)
    scorer = Scorer(settings)
    documents: dict[str, dict[str, Any]] = {}
    for topic, raw in messages:
        try:
            outcome = scorer.score(topic, raw, now=NOW)
        except Rejection:
            continue
        for result in [outcome, *scorer.sweep(0, now=NOW)]:
            if result.document is not None:
                documents[result.document.user_id] = result.document.model_dump()
    # Everything read: no topic holds the watermark any more (as the worker sees it then).
    for topic in settings.input_topics:
        scorer.watermark(0).read_up(topic, at_end=True)
    for result in scorer.sweep(0, now=NOW):
        if result.document is not None:
            documents[result.document.user_id] = result.document.model_dump()
    references = reference_scores(messages, settings, lambda _: 0, now=NOW)
    assert set(documents) == set(references)
    stages = {ref.stage for ref in references.values()}
    assert {"potential", "active", "silent", "churned"} <= {s.value for s in stages if s}
    for user_id, ref in references.items():
        compare(documents[user_id], ref)


@pytest.mark.parametrize("refund_first", [True, False])
def test_a_refund_at_its_payments_own_millisecond_counts_whatever_came_first(
    refund_first: bool,
) -> None:
    settings = Settings(clickhouse_url="memory://")
    ts = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
    base = {"user_id": "u1", "ts": ts, "order_id": "o1", "currency": "CNY"}
    paid = orjson.dumps({**base, "event_id": "p", "type": "order_paid", "amount": "10.00"})
    refund = orjson.dumps({**base, "event_id": "r", "type": "order_refunded", "amount": "4.00"})
    messages = [(settings.topic_order, refund), (settings.topic_order, paid)]
    if not refund_first:
        messages.reverse()
    ref = reference_scores(messages, settings, lambda _: 0)["u1"]
    assert (ref.refunds, ref.monetary_cents) == (1, 600)
    scorer = Scorer(settings)
    for topic, raw in messages:
        scorer.score(topic, raw, now=datetime(2026, 11, 30, tzinfo=UTC))
    state = scorer.store.get("u1")
    assert state is not None
    assert (state.refund_count, state.monetary_cents) == (1, 600)
