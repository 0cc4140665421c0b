"""No sequence of accepted events makes a monetary value or a count negative, or a score NaN."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.store import UserStore
from schemas.validation import Rejection

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
START = int((NOW - timedelta(days=400)).timestamp() * 1000)
USERS = ["u1", "u2", "u3"]
ORDERS = ["o1", "o2", "o3", "o4"]
# Whole amounts for currencies without minor units, cents for the others; 0 is a free order.
AMOUNTS = {
    "CNY": st.integers(0, 10**14).map(lambda c: f"{c // 100}.{c % 100:02d}"),
    "USD": st.sampled_from(["0", "0.01", "19.99", "100000000000.00"]),
    "JPY": st.integers(0, 10**9).map(str),
}


@st.composite
def events(draw: st.DrawFn) -> tuple[str, bytes]:
    base: dict[str, Any] = {
        "event_id": draw(st.sampled_from([f"e{i}" for i in range(30)])),
        "user_id": draw(st.sampled_from(USERS)),
        "ts": START + draw(st.integers(0, 400 * 86_400_000)),
    }
    if draw(st.booleans()):
        currency = draw(st.sampled_from(sorted(AMOUNTS)))
        base |= {
            "type": draw(st.sampled_from(["order_created", "order_paid", "order_refunded"])),
            "order_id": draw(st.sampled_from(ORDERS)),
            "amount": draw(AMOUNTS[currency]),
            "currency": currency,
        }
        return "order-events", orjson.dumps(base)
    kind = draw(st.sampled_from(["like", "comment", "watch"]))
    base |= {"type": kind, "room_id": "r1", "session_id": "s1"}
    if kind == "comment":
        base["text"] = draw(st.sampled_from(["太好了", "nothing for redheads :(", "ok"]))
    if kind == "watch":
        base["seconds"] = draw(st.floats(0.001, 86_400))
    return "live-events", orjson.dumps(base)


def finite_numbers(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    return True


@settings(max_examples=150, deadline=None)
@given(st.lists(events(), min_size=1, max_size=60))
def test_accepted_events_keep_every_figure_sane(history: list[tuple[str, bytes]]) -> None:
    scorer = Scorer(Settings(clickhouse_url="memory://"), UserStore())
    for topic, raw in history:
        try:
            scorer.score(topic, raw, now=NOW)
        except Rejection:
            continue  # refused events change nothing (tested case by case elsewhere)
    store = scorer.store
    scorer.enricher.refit(u for p in store.partitions() for u in store.users_of(p))
    for user_id in USERS:
        state = scorer.store.get(user_id)
        if state is None:
            continue
        assert state.monetary_cents >= 0
        assert 0 <= state.monetary_cents <= state.paid_cents
        assert min(state.order_count, state.free_orders, state.refund_count) >= 0
        assert state.free_orders <= state.order_count
        assert state.interactions >= 0
        assert all(paid >= refunded >= 0 for paid, refunded, _ in state.orders.values())
        document = scorer.document(state, NOW).model_dump()
        assert finite_numbers(document), document
        assert document["monetary"] >= 0
