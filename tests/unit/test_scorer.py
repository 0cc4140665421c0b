"""The scorer: one raw message in, state, score document and ClickHouse rows out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.domain.stages import DAY_MS, Stage
from pipeline.scorer import Scorer, rules_from
from pipeline.settings import Settings
from pipeline.store import UserStore, decode_user, encode_user
from schemas.validation import Rejection

TS = 1_700_000_000_000
NOW = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def settings() -> Settings:
    # Events of 2023 scored at a wall clock of 2024: facts of the past fire triggers here.
    return Settings(clickhouse_url="memory://", trigger_max_age_seconds=10 * 365 * 86_400)


@pytest.fixture
def state() -> UserStore:
    return UserStore()


@pytest.fixture
def scorer(settings: Settings, state: UserStore) -> Scorer:
    return Scorer(settings, state)


def order(**changes: Any) -> bytes:
    data: dict[str, Any] = {
        "event_id": "e1",
        "type": "order_paid",
        "user_id": "u1",
        "ts": TS,
        "order_id": "o1",
        "amount": "10.00",
        "currency": "USD",
        "channel": "live",
        "room_id": "room-9",
    }
    data.update(changes)
    return orjson.dumps(data)


def like(ts: object, event_id: str = "l1", user_id: str = "u1") -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "type": "like",
            "user_id": user_id,
            "ts": ts,
            "room_id": "r",
            "session_id": "s",
        }
    )


def test_rules_follow_the_settings() -> None:
    rules = rules_from(
        Settings(silent_after_days=7, churned_after_days=21, active_min_interactions=4)
    )
    assert (rules.silent_ms, rules.churned_ms) == (7 * DAY_MS, 21 * DAY_MS)
    assert rules.active_min_interactions == 4


def test_paid_order_produces_a_new_customer_document(scorer: Scorer) -> None:
    outcome = scorer.score("order-events", order(), now=NOW)
    doc = outcome.document
    assert doc.user_id == "u1"
    assert doc.stage == "new"
    assert doc.order_count == 1
    assert doc.refund_count == 0
    assert doc.monetary == pytest.approx(71.0)  # 10 USD at 7.1 CNY
    assert doc.currency == "CNY"
    assert doc.interactions == 1
    assert doc.version == 1
    assert doc.updated_at == NOW
    assert doc.first_paid_at == datetime.fromtimestamp(TS / 1000, tz=UTC)
    assert doc.stage_since == doc.first_paid_at
    assert [(t.from_stage, t.to_stage, t.at_ms) for t in outcome.transitions] == [
        (None, Stage.NEW, TS)
    ]


def test_rows_for_events_transitions_and_scores(scorer: Scorer) -> None:
    rows = scorer.score("order-events", order(), now=NOW).rows
    # The first paid order also fires the `first_order` trigger.
    tables = ["events", "stage_transitions", "user_scores", "triggers"]
    assert [table for table, _ in rows] == tables
    event, transition, score, trigger = (row for _, row in rows)
    assert (trigger["rule"], trigger["subject_id"], trigger["at_ms"]) == ("first_order", "u1", TS)
    assert event["event_id"] == "e1"
    assert event["topic"] == "order-events"
    assert event["ts_ms"] == TS
    assert event["amount"] == Decimal("10.00")
    assert event["amount_base"] == Decimal("71.00")
    assert event["currency"] == "USD"
    assert event["room_id"] == "room-9"
    assert event["received_at"] == NOW
    assert event["text"] == ""
    assert transition["from_stage"] == ""
    assert transition["to_stage"] == "new"
    assert transition["at_ms"] == TS
    assert transition["reactivation"] == 0
    assert score["stage"] == "new"
    assert score["monetary"] == Decimal("71.0")
    assert score["user_id"] == "u1"


def test_state_is_kept_and_picked_up_again(scorer: Scorer, state: UserStore) -> None:
    scorer.score("order-events", order(), now=NOW)
    assert state.dirty_partitions() == [0]
    (changed,) = state.take_dirty(0)
    stored, partition = decode_user(encode_user(changed, 0))
    assert partition == 0
    assert stored.stage == Stage.NEW
    assert stored.monetary_cents == 7100
    assert state.take_dirty(0) == []  # taken once

    outcome = scorer.score(
        "order-events",
        order(event_id="e2", type="order_refunded", amount="2.50", ts=TS + DAY_MS),
        now=NOW,
    )
    doc = outcome.document
    assert doc.version == 2
    assert doc.order_count == 1
    assert doc.refund_count == 1
    assert doc.monetary == pytest.approx(71.0 - 17.75)
    assert outcome.transitions == []
    assert [table for table, _ in outcome.rows] == ["events", "user_scores"]


def test_users_are_scored_independently(scorer: Scorer, state: UserStore) -> None:
    scorer.score("live-events", like(TS, user_id="a"), now=NOW)
    doc = scorer.score("live-events", like(TS, user_id="b"), now=NOW).document
    assert doc.user_id == "b"
    assert doc.version == 1
    assert {u.user_id for u in state.users_of(0)} == {"a", "b"}


def test_idle_transitions_are_emitted_with_their_rule_time(scorer: Scorer) -> None:
    scorer.score("live-events", like(TS), now=NOW)
    later = datetime.fromtimestamp((TS + 100 * DAY_MS) / 1000, tz=UTC)
    outcome = scorer.score("live-events", like(TS + 100 * DAY_MS, "l2"), now=later)
    rows = [row for table, row in outcome.rows if table == "stage_transitions"]
    assert [(r["from_stage"], r["to_stage"], r["at_ms"]) for r in rows] == [
        ("potential", "silent", TS + 30 * DAY_MS),
        ("silent", "churned", TS + 90 * DAY_MS),
        ("churned", "potential", TS + 100 * DAY_MS),
    ]
    assert rows[-1]["reactivation"] == 1
    assert outcome.document.stage == "potential"


def test_custom_topic_names_are_honoured(state: UserStore) -> None:
    scorer = Scorer(Settings(clickhouse_url="memory://", topic_order="shop-orders"), state)
    assert scorer.score("shop-orders", order(), now=NOW).document.stage == "new"
    with pytest.raises(Rejection) as info:
        scorer.score("order-events", order(), now=NOW)
    assert info.value.reason == "unknown_topic"


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "in_detail"),
    [
        ("order-events", b"{not json", "not_json", "char"),
        ("order-events", b"", "not_json", "empty"),
        ("order-events", order(currency="XYZ"), "unknown_currency", "XYZ"),
        ("payments", order(), "unknown_topic", "payments"),
        ("order-events", order(order_id=None), "wrong_type", "string"),
        ("order-events", order(amount="-1"), "invalid_amount", "greater than or equal to 0"),
        ("order-events", order(type="order_shipped"), "unknown_type", "order_shipped"),
        ("order-events", order(ts="2024-01-01T00:00:00"), "invalid_timestamp", "offset"),
        ("live-events", order(), "unknown_type", "order_paid"),
    ],
)
def test_bad_messages_are_rejected_with_a_reason(
    scorer: Scorer,
    state: UserStore,
    topic: str,
    payload: bytes,
    reason: str,
    in_detail: str,
) -> None:
    with pytest.raises(Rejection) as info:
        scorer.score(topic, payload, now=NOW)
    assert info.value.reason == reason
    assert in_detail in info.value.detail
    assert str(info.value).startswith(reason)
    assert len(state) == 0  # nothing of a rejected message reaches the state


def test_missing_field_names_it(scorer: Scorer) -> None:
    payload = orjson.dumps({k: v for k, v in orjson.loads(order()).items() if k != "order_id"})
    with pytest.raises(Rejection) as info:
        scorer.score("order-events", payload, now=NOW)
    assert (info.value.reason, info.value.field) == ("missing_field", "order_id")


@pytest.mark.parametrize("ts", [9 * 10**18, 1e300, "9" * 25])
def test_out_of_range_timestamp_is_rejected_not_raised(scorer: Scorer, ts: object) -> None:
    # Out-of-range times are a clear rejection, not an internal error.
    payload = orjson.loads(like(TS))
    payload["ts"] = ts
    with pytest.raises(Rejection):
        scorer.score("live-events", orjson.dumps(payload), now=NOW)


def test_now_defaults_to_the_wall_clock(scorer: Scorer) -> None:
    before = datetime.now(tz=UTC)
    doc = scorer.score("live-events", like(TS)).document
    assert before <= doc.updated_at <= datetime.now(tz=UTC)


def test_documents_built_without_validation_are_exactly_what_validation_gives() -> None:
    """Score documents are constructed, not validated (they are built once per changed user):
    for users of every kind, validating the document back changes nothing and warns of
    nothing."""
    import warnings

    from pipeline.demo_model import World, utc_midnight
    from schemas.scores import ScoreDocument

    settings = Settings(clickhouse_url="memory://")
    scorer = Scorer(settings, UserStore())
    start = utc_midnight(NOW) - timedelta(days=120)
    world = World(150, start, 120, seed=3)
    topics = {"LiveEvent": "live-events", "ChatEvent": "chat-events",
              "OrderEvent": "order-events", "TouchEvent": "touch-events"}  # fmt: skip
    events = sorted(
        (e for d in range(120) for e in world.day(start + timedelta(days=d))), key=lambda e: e.ts
    )
    kinds = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for event in events:
            raw = event.model_dump_json(exclude_none=True).encode()
            outcome = scorer.score(topics[type(event).__name__], raw, now=NOW + timedelta(days=2))
            doc = outcome.document
            if doc is None:
                continue
            body = doc.model_dump_json()
            again = ScoreDocument.model_validate_json(body)
            assert again.model_dump_json() == body
            validated = ScoreDocument.model_validate(doc.model_dump())
            assert again == validated
            assert doc.model_fields_set == validated.model_fields_set
            assert doc.model_copy(update={"version": 0}).version == 0
            kinds.add((doc.stage, doc.rfm is not None, doc.purchase is not None,
                       doc.sentiment is not None))  # fmt: skip
    assert len(kinds) >= 6, kinds
