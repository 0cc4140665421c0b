"""Triggers act on the present; corrections of the history are rows, never pushes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.domain.stages import DAY_MS
from pipeline.outcome import Outcome
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.store import UserStore
from tests.unit.test_triggers import rfm

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
MINUTE = 60_000


class User:
    def __init__(self, scorer: Scorer, user_id: str = "u1") -> None:
        self.scorer, self.user_id, self.n = scorer, user_id, 0

    def send(self, topic: str, data: dict[str, Any]) -> Outcome:
        self.n += 1
        data = {"event_id": f"{self.user_id}-{self.n}", "user_id": self.user_id, **data}
        return self.scorer.score(topic, orjson.dumps(data), now=NOW)

    def like(self, ts: int) -> Outcome:
        return self.send(
            "live-events", {"type": "like", "ts": ts, "room_id": "r", "session_id": "s"}
        )

    def paid(self, ts: int, order_id: str) -> Outcome:
        order = {"order_id": order_id, "amount": "10.00", "currency": "CNY"}
        return self.send("order-events", {"type": "order_paid", "ts": ts, **order})


def rules_of(outcomes: list[Outcome]) -> list[str]:
    return [f.rule for o in outcomes for f, _ in o.fired]


def scorer() -> Scorer:
    return Scorer(Settings(clickhouse_url="memory://"), UserStore())  # default: 10 minutes


def test_facts_of_the_past_fire_nothing_and_the_present_fires() -> None:
    user = User(scorer())
    past = [user.paid(NOW_MS - 200 * DAY_MS, "o1"), user.paid(NOW_MS - 190 * DAY_MS, "o2")]
    assert rules_of(past) == []  # first_order and repeat_buyer of history: not pushed
    assert user.scorer.store.get("u1").fired_rules == {}  # type: ignore[union-attr]
    # The same user's present: a third order fires nothing (repeat_buyer held already).
    assert rules_of([user.paid(NOW_MS - MINUTE, "o3")]) == []


def test_a_first_order_now_fires() -> None:
    user = User(scorer())
    assert rules_of([user.paid(NOW_MS - MINUTE, "o1")]) == ["first_order"]


def test_the_age_is_configuration() -> None:
    lenient = Scorer(
        Settings(clickhouse_url="memory://", trigger_max_age_seconds=300 * 86_400), UserStore()
    )
    user = User(lenient)
    assert rules_of([user.paid(NOW_MS - 200 * DAY_MS, "o1")]) == ["first_order"]


def test_a_late_event_publishes_corrections_as_versioned_rows_and_fires_nothing() -> None:
    user = User(scorer())
    user.like(NOW_MS - 100 * DAY_MS)
    user.like(NOW_MS - 5 * MINUTE)  # back from churned: reactivation rows
    late = user.like(NOW_MS - 50 * DAY_MS)  # arrives last: the history from -50 d changes
    rows = [row for table, row in late.rows if table == "stage_transitions"]
    retracted = [(r["from_stage"], r["to_stage"]) for r in rows if r["valid"] == 0]
    added = [(r["from_stage"], r["to_stage"]) for r in rows if r["valid"] == 1]
    assert retracted == [("silent", "churned"), ("churned", "potential")]
    assert added == [("silent", "potential"), ("potential", "silent"), ("silent", "potential")]
    assert {r["version"] for r in rows} == {user.scorer.store.get("u1").version}  # type: ignore[union-attr]
    assert late.fired == []
    state = user.scorer.store.get("u1")
    assert state is not None
    assert state.reactivations == 2


def backfilled(user: User, ts: int, order_id: str) -> Outcome:
    """A payment loaded with a backfill (the record header): history."""
    user.n += 1
    order = {"order_id": order_id, "amount": "10.00", "currency": "CNY"}
    data = {"event_id": f"{user.user_id}-{user.n}", "user_id": user.user_id, "ts": ts,
            "type": "order_paid", **order}  # fmt: skip
    return user.scorer.score("order-events", orjson.dumps(data), now=NOW, backfill=True)


def test_a_backfilled_event_fires_nothing_however_recent() -> None:
    user = User(scorer())
    assert rules_of([backfilled(user, NOW_MS - MINUTE, "o1")]) == []  # live, it would fire
    state = user.scorer.store.get("u1")
    assert state is not None
    assert state.backfilled_latest
    # Rules on the user's scores see history too: a document as of it fires nothing.
    doc = user.scorer.document(state, NOW).model_copy(update={"rfm": rfm("A")})
    assert user.scorer.triggers.on_document(state, doc) == []
    # The user's present does: a live event after the history.
    user.like(NOW_MS - MINUTE // 2)
    assert not state.backfilled_latest
    fired = user.scorer.triggers.on_document(state, doc)
    assert [f.rule for f in fired] == ["became_high_value"]


def test_what_the_latest_event_was_does_not_depend_on_arrival_order() -> None:
    """A live and a backfilled event of the same millisecond: the latest is live either way;
    an older backfilled event after a live one leaves the latest live."""
    for order in ("live first", "history first"):
        user = User(scorer())
        if order == "live first":
            user.like(NOW_MS - MINUTE)
            backfilled(user, NOW_MS - MINUTE, "o1")
        else:
            backfilled(user, NOW_MS - MINUTE, "o1")
            user.like(NOW_MS - MINUTE)
        backfilled(user, NOW_MS - 2 * MINUTE, "o2")
        state = user.scorer.store.get("u1")
        assert state is not None
        assert not state.backfilled_latest, order


def test_an_idle_stage_change_after_history_is_of_the_present() -> None:
    """The watermark moving a backfilled user on to a stage change of the present (silent
    five minutes ago) is a fact of the present: rules on their scores may fire for it."""
    user = User(scorer())
    backfilled(user, NOW_MS - 30 * DAY_MS - 5 * MINUTE, "o1")
    user.scorer.sweep(0, NOW, clock_ms=NOW_MS - MINUTE)  # silent 30 days after the order
    state = user.scorer.store.get("u1")
    assert state is not None
    assert state.stage is not None
    assert state.stage.value == "silent"
    doc = user.scorer.document(state, NOW).model_copy(update={"rfm": rfm("A")})
    assert [f.rule for f in user.scorer.triggers.on_document(state, doc)] == ["became_high_value"]


def test_a_backfilled_past_the_watermark_settles_late_fires_nothing() -> None:
    """Found by trying the product: a user backfilled 45 days ago went silent 15 days ago in
    their history, which a small backfill's watermark only reached when it moved back to the
    present. That stage change is history, and so are the scores as of the present it moved
    the user to: no rule on scores fires (it fired `churn_risk` once the model was ready)."""
    user = User(scorer())
    backfilled(user, NOW_MS - 45 * DAY_MS, "o1")
    swept = user.scorer.sweep(0, NOW, clock_ms=NOW_MS - MINUTE)
    assert [t.to_stage.value for o in swept for t in o.transitions] == ["silent"]
    assert rules_of(swept) == []  # became_silent: 15 days ago
    state = user.scorer.store.get("u1")
    assert state is not None
    assert state.clock_ms is not None
    assert state.clock_ms > NOW_MS - 2 * MINUTE  # moved on to the present
    doc = user.scorer.document(state, NOW).model_copy(update={"rfm": rfm("A")})
    assert user.scorer.triggers.on_document(state, doc) == []
    # The same user's next live event is the present: their scores' rules fire again.
    user.like(NOW_MS - MINUTE // 2)
    fired = user.scorer.triggers.on_document(state, doc)
    assert [f.rule for f in fired] == ["became_high_value"]
