"""A refund that arrives before its order's payment is held in the user's state until the
payment comes, so the result does not depend on which of the two arrived first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pipeline.held_refunds import MAX_HELD_PER_USER
from pipeline.outcome import Outcome
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.store import UserStore, decode_user, encode_user
from schemas.validation import Rejection

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
TS = int((NOW - timedelta(hours=2)).timestamp() * 1000)
HOUR = 3_600_000


def new_scorer() -> Scorer:
    return Scorer(Settings(clickhouse_url="memory://"), UserStore())


def order(event_id: str, order_id: str, amount: str, **changes: Any) -> bytes:
    data: dict[str, Any] = {"event_id": event_id, "type": "order_paid", "user_id": "u1",
                            "ts": TS, "order_id": order_id, "amount": amount,
                            "currency": "CNY"}  # fmt: skip
    data.update(changes)
    return orjson.dumps(data)


def like(event_id: str, ts: int, user_id: str = "u1") -> bytes:
    return orjson.dumps({"event_id": event_id, "type": "like", "user_id": user_id, "ts": ts,
                         "room_id": "r", "session_id": "s"})  # fmt: skip


def score(scorer: Scorer, raw: bytes, topic: str = "order-events") -> Outcome:
    return scorer.score(topic, raw, now=NOW)


def document(scorer: Scorer, user_id: str = "u1") -> dict[str, Any]:
    state = scorer.store.get(user_id)
    assert state is not None
    data = scorer.document(state, NOW).model_dump(mode="json")
    data.pop("computed_at", None)
    return data


PAID = order("p1", "o-1", "100.00")
REFUND = order("r1", "o-1", "30.00", type="order_refunded", ts=TS + 60_000)
LIKE = like("l1", TS + 120_000)


def test_a_refund_before_its_payment_gives_what_event_time_order_gives() -> None:
    in_order, reversed_ = new_scorer(), new_scorer()
    for raw in (PAID, REFUND):
        score(in_order, raw)
    score(in_order, LIKE, "live-events")

    held = score(reversed_, REFUND)
    assert held.held
    assert held.document is None
    assert not held.rows
    assert document(reversed_)["refund_count"] == 0  # held: counts nothing yet
    paid = score(reversed_, PAID)
    assert paid.released == 1
    assert not paid.dead_letters
    assert [table for table, _ in paid.rows].count("events") == 2  # the refund's row too
    score(reversed_, LIKE, "live-events")

    assert document(reversed_) == document(in_order)
    assert (document(reversed_)["monetary"], document(reversed_)["refund_count"]) == (70.0, 1)
    state = reversed_.store.get("u1")
    assert state is not None
    assert state.held_refunds == {}
    assert state.seen_ids == in_order.store.get("u1").seen_ids  # type: ignore[union-attr]


def test_a_resend_of_a_held_refund_is_a_duplicate() -> None:
    scorer = new_scorer()
    assert score(scorer, REFUND).held
    assert score(scorer, REFUND).duplicate
    assert score(scorer, PAID).released == 1


def test_a_held_refund_is_kept_in_the_state_record() -> None:
    scorer = new_scorer()
    score(scorer, REFUND)
    state = scorer.store.get("u1")
    assert state is not None
    again, partition = decode_user(encode_user(state, 0))
    assert again.held_refunds == state.held_refunds
    assert partition == 0
    restarted = Scorer(scorer.settings, UserStore())
    restarted.store.load(again, 0)
    restarted.adopt_partition(0)
    assert score(restarted, PAID).released == 1
    assert document(restarted)["monetary"] == 70.0


def test_a_held_refund_whose_payment_does_not_come_is_dead_lettered_past_the_lateness() -> None:
    scorer = new_scorer()
    score(scorer, REFUND)
    assert scorer.held.count(scorer.store) == 1
    # The order topic is read to its end; the live one moves the partition's watermark,
    # first to just within the lateness: still held.
    scorer.watermark(0).read_up("order-events", at_end=True)
    score(scorer, like("w1", TS + 60_000 + HOUR, user_id="u2"), "live-events")
    assert not [o for o in scorer.sweep(0, NOW) if o.dead_letters]
    # Past it: the payment is not coming.
    score(scorer, like("w2", TS + 60_000 + HOUR + 2, user_id="u2"), "live-events")
    [outcome] = [o for o in scorer.sweep(0, NOW) if o.dead_letters]
    [dead] = outcome.dead_letters
    assert (dead.rejection.reason, dead.rejection.field) == ("unknown_order", "order_id")
    assert "lateness" in dead.rejection.detail
    assert (dead.topic, dead.partition, dead.key) == ("order-events", 0, b"u1")
    assert orjson.loads(dead.value)["event_id"] == "r1"
    assert scorer.held.count(scorer.store) == 0
    state = scorer.store.get("u1")
    assert state is not None
    assert state.held_refunds == {}
    # A payment now is an order of its own; the refund it might have had is gone.
    assert score(scorer, PAID).released == 0


def test_a_user_holds_a_bounded_number_of_refunds() -> None:
    scorer = new_scorer()
    for i in range(MAX_HELD_PER_USER):
        assert score(scorer, order(f"r{i}", f"o-{i}", "1.00", type="order_refunded")).held
    with pytest.raises(Rejection) as info:
        score(scorer, order("r-more", "o-more", "1.00", type="order_refunded"))
    assert info.value.reason == "unknown_order"
    assert f"{MAX_HELD_PER_USER} refunds" in info.value.detail


def test_erasure_and_a_partition_moving_forget_held_refunds() -> None:
    scorer = new_scorer()
    score(scorer, REFUND)
    assert scorer.erase("u1")
    assert scorer.held.count(scorer.store) == 0
    score(scorer, REFUND)
    scorer.forget_partition(0)
    assert scorer.held.holders == {}
