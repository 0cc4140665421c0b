"""Random and mutated input: nothing crashes, and in = scored + duplicates + dead letters."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.scorer import Scorer
from pipeline.settings import Settings
from schemas.validation import Rejection

NOW = datetime(2026, 6, 1, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
TOPICS = ("live-events", "chat-events", "order-events", "touch-events")

users = st.sampled_from(["u1", "u2", "u3", "用户4"])
event_ids = st.integers(0, 40).map(lambda n: f"e{n}")  # a small pool, so duplicates happen
times = st.integers(NOW_MS - 200 * 86_400_000, NOW_MS)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


@st.composite
def valid_event(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    common = {"event_id": draw(event_ids), "user_id": draw(users), "ts": draw(times)}
    topic = draw(st.sampled_from(TOPICS))
    if topic == "live-events":
        kind = draw(st.sampled_from(["room_enter", "like", "watch", "comment", "share"]))
        extra: dict[str, Any] = {"room_id": "r1", "session_id": "s1"}
        if kind == "watch":
            extra["seconds"] = draw(st.integers(1, 4000))
        if kind == "comment":
            extra["text"] = draw(st.text(max_size=20))
    elif topic == "chat-events":
        kind, extra = "message", {"text": draw(st.text(max_size=20)), "group_id": "g1"}
    elif topic == "order-events":
        kind = draw(st.sampled_from(["order_created", "order_paid", "order_refunded"]))
        amount = draw(st.decimals(min_value="0.01", max_value="99999", places=2))
        extra = {
            "order_id": "o1",
            "amount": str(amount),
            "currency": draw(st.sampled_from(["CNY", "USD"])),
        }
    else:
        kind = draw(st.sampled_from(["touch_sent", "touch_opened", "touch_clicked"]))
        extra = {"campaign_id": "c1", "channel": "wecom"}
    return topic, {**common, "type": kind, **extra}


@st.composite
def message(draw: st.DrawFn) -> tuple[str, bytes]:
    topic, event = draw(valid_event())
    how = draw(st.sampled_from(["valid", "valid", "drop", "replace", "bytes", "truncate"]))
    if how == "drop":
        event.pop(draw(st.sampled_from(sorted(event))))
    elif how == "replace":
        event[draw(st.sampled_from(sorted(event)))] = draw(json_values)
    elif how == "bytes":
        return topic, draw(st.binary(max_size=64))
    raw = orjson.dumps(event)
    if how == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    return topic, raw


@settings(max_examples=150, deadline=None)
@given(st.lists(message(), max_size=60))
def test_every_message_is_scored_duplicate_or_dead_lettered(
    messages: list[tuple[str, bytes]],
) -> None:
    scorer = Scorer(Settings(clickhouse_url="memory://"))
    counts: Counter[str] = Counter()
    scored_by_user: Counter[str] = Counter()
    paid_by_user: Counter[str] = Counter()
    for topic, raw in messages:
        try:
            outcome = scorer.score(topic, raw, now=NOW)
        except Rejection as rejection:
            reason = rejection.reason
            counts["dead"] += 1
            assert reason
            continue
        if outcome.duplicate:
            assert outcome.document is None
            counts["duplicate"] += 1
            continue
        if outcome.held:  # a refund before its payment: held until the payment comes
            assert outcome.document is None
            counts["held"] += 1
            continue
        # Refunds held before this payment come with it, applied or refused.
        counts["scored"] += 1 + outcome.released
        counts["dead"] += len(outcome.dead_letters)
        counts["held"] -= outcome.released + len(outcome.dead_letters)
        assert outcome.document is not None
        scored_by_user[outcome.document.user_id] += 1 + outcome.released
        event = orjson.loads(raw)
        paid_by_user[outcome.document.user_id] += event["type"] == "order_paid"
    held_now = sum(
        len(held) for user in scorer.store.users_of(0) for held in user.held_refunds.values()
    )
    assert counts["held"] == held_now
    total = counts["scored"] + counts["duplicate"] + counts["dead"] + counts["held"]
    assert total == len(messages)
    for user_id, scored in scored_by_user.items():
        state = scorer.store.get(user_id)
        assert state is not None
        assert state.version == scored
        assert state.order_count == paid_by_user[user_id]
