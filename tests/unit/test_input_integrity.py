"""Input that looks valid must not corrupt the state: orders, amounts, times, ids, reused ids.

Each case is one member of a kind of fault found by trying the product as a user would; the
values are the right ones, worked out by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pipeline.outcome import Outcome
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.store import UserStore
from schemas.validation import Rejection

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
TS = int((NOW - timedelta(minutes=1)).timestamp() * 1000)


@pytest.fixture
def scorer() -> Scorer:
    return Scorer(Settings(clickhouse_url="memory://"), UserStore())


def order(event_id: str, order_id: str, amount: Any, **changes: Any) -> bytes:
    data: dict[str, Any] = {
        "event_id": event_id,
        "type": "order_paid",
        "user_id": "u1",
        "ts": TS,
        "order_id": order_id,
        "amount": amount,
        "currency": "CNY",
    }
    data.update(changes)
    return orjson.dumps(data)


def score(scorer: Scorer, raw: bytes, topic: str = "order-events") -> Outcome:
    return scorer.score(topic, raw, now=NOW)


def rejected(scorer: Scorer, raw: bytes, topic: str = "order-events") -> Rejection:
    with pytest.raises(Rejection) as info:
        score(scorer, raw, topic)
    return info.value


def user(scorer: Scorer, user_id: str = "u1") -> dict[str, Any]:
    state = scorer.store.get(user_id)
    assert state is not None
    return scorer.document(state, NOW).model_dump()


# -- orders mean what they say ---------------------------------------------------------------


def test_an_order_paid_twice_under_new_event_ids_counts_once(scorer: Scorer) -> None:
    first = score(scorer, order("e3a", "o-3", "100.00"))
    second = score(scorer, order("e3b", "o-3", "100.00", ts=TS + 30_000))
    assert [f.rule for f, _ in first.fired] == ["first_order"]
    assert second.duplicate
    assert second.duplicate_order
    assert (second.fired, second.rows) == ([], [])
    doc = user(scorer)
    assert (doc["order_count"], doc["monetary"]) == (1, 100.0)
    # A resend of the second is now a plain duplicate, and still no repeat_buyer.
    again = score(scorer, order("e3b", "o-3", "100.00", ts=TS + 30_000))
    assert again.duplicate
    assert not again.duplicate_order
    assert user(scorer)["order_count"] == 1


def test_an_order_paid_again_with_another_amount_is_refused(scorer: Scorer) -> None:
    score(scorer, order("e5a", "o-5", "100.00"))
    problem = rejected(scorer, order("e5b", "o-5", "120.00"))
    assert (problem.reason, problem.field) == ("conflicting_order", "order_id")
    assert "100.00" in problem.detail
    assert "120.00" in problem.detail
    assert user(scorer)["monetary"] == 100.0


def test_a_refund_is_capped_at_what_its_order_paid(scorer: Scorer) -> None:
    score(scorer, order("e4a", "o-4", "100.00"))
    score(scorer, order("e4b", "o-4", "300.00", type="order_refunded", ts=TS + 60_000))
    doc = user(scorer)
    assert (doc["monetary"], doc["refund_count"], doc["order_count"]) == (0.0, 1, 1)
    # A second refund of the same order has nothing left to take back.
    score(scorer, order("e4c", "o-4", "10.00", type="order_refunded", ts=TS + 90_000))
    assert user(scorer)["monetary"] == 0.0


def test_partial_refunds_add_up_to_the_order_at_most(scorer: Scorer) -> None:
    score(scorer, order("p1", "o-6", "100.00"))
    score(scorer, order("p2", "o-7", "50.00", ts=TS + 1))
    score(scorer, order("r1", "o-6", "30.00", type="order_refunded", ts=TS + 2))
    score(scorer, order("r2", "o-6", "90.00", type="order_refunded", ts=TS + 3))
    assert user(scorer)["monetary"] == 50.0  # o-6 fully refunded (30 + 70), o-7 kept


def test_a_refund_of_an_order_never_seen_is_refused_and_changes_nothing(scorer: Scorer) -> None:
    # Another user's order moves the partition's watermark to TS; a refund more than the
    # lateness (an hour) before it cannot be waiting for a payment still to come.
    score(scorer, order("w1", "o-w", "1.00", user_id="u2"))
    two_hours = 2 * 3600 * 1000
    problem = rejected(
        scorer, order("e9", "o-unknown", "50.00", type="order_refunded", ts=TS - two_hours)
    )
    assert (problem.reason, problem.field) == ("unknown_order", "order_id")
    assert "o-unknown" in problem.detail
    assert scorer.store.get("u1") is None  # no user made up from it, monetary never -50.00


def test_a_refund_dated_before_its_payment_is_refused_whatever_the_arrival_order(
    scorer: Scorer,
) -> None:
    # Paid at TS, refunded at TS - 1 s: the order was not paid yet at the refund's time (as
    # the reference scorer, which reads events in event-time order, says too).
    score(scorer, order("bp1", "o-8", "40.00"))
    late = rejected(scorer, order("bp2", "o-8", "40.00", type="order_refunded", ts=TS - 1000))
    assert (late.reason, late.field) == ("unknown_order", "order_id")
    assert "dated before" in late.detail
    doc = user(scorer)
    assert (doc["monetary"], doc["refund_count"]) == (40.0, 0)
    # At the payment's own time it is a refund.
    score(scorer, order("bp3", "o-8", "40.00", type="order_refunded", ts=TS))
    assert (user(scorer)["monetary"], user(scorer)["refund_count"]) == (0.0, 1)


def test_a_refund_dated_before_its_payment_arriving_first_is_refused_when_the_payment_comes(
    scorer: Scorer,
) -> None:
    assert score(scorer, order("bq2", "o-9", "40.00", type="order_refunded", ts=TS - 1000)).held
    paid = score(scorer, order("bq1", "o-9", "40.00"))
    assert paid.released == 0
    [dead] = paid.dead_letters
    assert (dead.rejection.reason, dead.rejection.field) == ("unknown_order", "order_id")
    assert "dated before" in dead.rejection.detail
    assert orjson.loads(dead.value)["event_id"] == "bq2"
    assert (user(scorer)["monetary"], user(scorer)["refund_count"]) == (40.0, 0)


def test_free_orders_count_in_frequency_and_recency_not_in_order_value(scorer: Scorer) -> None:
    score(scorer, order("f1", "o-free", "0"))
    doc = user(scorer)
    assert (doc["order_count"], doc["free_order_count"], doc["monetary"]) == (1, 1, 0.0)
    assert doc["last_paid_at"] is not None
    assert doc["stage"] == "new"
    assert doc["mean_order_value"] is None
    score(scorer, order("f2", "o-paid", "80.00", ts=TS + 1000))
    doc = user(scorer)
    assert (doc["order_count"], doc["free_order_count"]) == (2, 1)
    assert doc["mean_order_value"] == 80.0  # the free order is no order value


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        ("-0.01", "CNY", "invalid_amount"),
        ("1.50", "JPY", "invalid_amount"),
        ("0.01", "KRW", "invalid_amount"),
        ("1.005", "CNY", "invalid_amount"),
        ("1500000000000000.00", "USD", "invalid_amount"),  # above 10^12
        ("200000000000.00", "USD", "invalid_amount"),  # 1.42 * 10^12 CNY in the base currency
    ],
)
def test_amounts_are_bounded_and_respect_minor_units(
    scorer: Scorer, amount: str, currency: str, reason: str
) -> None:
    problem = rejected(scorer, order("a1", "o-a", amount, currency=currency))
    assert (problem.reason, problem.field) == (reason, "amount")


@pytest.mark.parametrize(
    ("amount", "currency"), [("1500", "JPY"), ("1500.00", "JPY"), ("9", "KRW")]
)
def test_whole_amounts_of_currencies_without_minor_units_are_fine(
    scorer: Scorer, amount: str, currency: str
) -> None:
    score(scorer, order("a1", "o-a", amount, currency=currency))
    assert user(scorer)["order_count"] == 1


# -- times must be plausible ----------------------------------------------------------------


def live(**changes: Any) -> bytes:
    data: dict[str, Any] = {
        "event_id": "l1",
        "type": "room_enter",
        "user_id": "u1",
        "ts": TS,
        "room_id": "r1",
        "session_id": "s1",
    }
    data.update(changes)
    return orjson.dumps(data)


def test_epoch_seconds_sent_as_milliseconds_are_refused_with_a_hint(scorer: Scorer) -> None:
    problem = rejected(scorer, live(ts=1796039086), "live-events")
    assert (problem.reason, problem.field) == ("invalid_timestamp", "ts")
    assert "1970-01-21" in problem.detail
    assert "epoch seconds" in problem.detail
    assert "2026-11-30T11:44:46" in problem.detail  # what the number means as seconds
    assert scorer.store.get("u1") is None  # nobody churned in 1970


def test_the_earliest_event_time_is_configuration() -> None:
    old = int(datetime(1985, 6, 1, tzinfo=UTC).timestamp() * 1000)
    default = Scorer(Settings(clickhouse_url="memory://"), UserStore())
    assert rejected(default, live(ts=old), "live-events").reason == "invalid_timestamp"
    earlier = Settings(clickhouse_url="memory://", earliest_event_time="1980-01-01T00:00:00Z")
    scorer = Scorer(earlier, UserStore())
    score(scorer, live(ts=old), "live-events")
    assert user(scorer)["interactions"] == 1


def test_the_earliest_event_time_cannot_go_below_what_the_stores_hold() -> None:
    with pytest.raises(ValueError, match="1970-01-02"):
        Settings(earliest_event_time="1969-01-01T00:00:00Z")


# -- ids are addressable --------------------------------------------------------------------


@pytest.mark.parametrize("user_id", ["bh/slash10", "a b", "..", "x?y", "50%", "用户", "#1"])
def test_ids_outside_the_alphabet_are_refused(scorer: Scorer, user_id: str) -> None:
    problem = rejected(scorer, live(user_id=user_id), "live-events")
    assert (problem.reason, problem.field) == ("invalid_field", "user_id")
    assert "letters, digits" in problem.detail


@pytest.mark.parametrize("field", ["room_id", "session_id", "event_id"])
def test_every_id_field_has_the_alphabet(scorer: Scorer, field: str) -> None:
    assert rejected(scorer, live(**{field: "a/b"}), "live-events").field == field


def test_ids_with_the_allowed_punctuation_are_scored(scorer: Scorer) -> None:
    score(scorer, live(user_id="oUpF8u-M2_px.b1:Q9@shop+cn=1"), "live-events")
    assert scorer.store.get("oUpF8u-M2_px.b1:Q9@shop+cn=1") is not None


# -- a reused event_id ----------------------------------------------------------------------


def test_an_event_id_reused_with_another_payload_is_refused(scorer: Scorer) -> None:
    score(scorer, order("bh-e2", "o-1", "100.00"))
    problem = rejected(scorer, order("bh-e2", "o-2", "500.00"))
    assert (problem.reason, problem.field) == ("conflicting_duplicate", "event_id")
    assert user(scorer)["monetary"] == 100.0


def test_a_resend_spelled_differently_is_a_plain_duplicate(scorer: Scorer) -> None:
    score(scorer, order("e1", "o-1", "100.00", props={"a": 1, "b": 2}))
    iso = datetime.fromtimestamp(TS / 1000, tz=UTC).isoformat()
    respelled = orjson.dumps(
        {
            "props": {"b": 2, "a": 1},
            "currency": "CNY",
            "amount": "100.0",
            "order_id": "o-1",
            "ts": iso,
            "user_id": "u1",
            "type": "order_paid",
            "event_id": "e1",
        }
    )
    assert score(scorer, respelled).duplicate


def test_a_time_beyond_what_the_stores_hold_and_ahead_is_a_future_timestamp(
    scorer: Scorer,
) -> None:
    problem = rejected(scorer, live(ts=17_000_000_000_000), "live-events")  # the year 2508
    assert (problem.reason, problem.field) == ("future_timestamp", "ts")


@pytest.mark.parametrize(
    "ts", ["2026-W48-1T12:00:00Z", "20261130T120000Z", "2026-11-30", "2026-11-30T12:00Z"]
)
def test_only_rfc_3339_text_is_a_time(scorer: Scorer, ts: str) -> None:
    assert rejected(scorer, live(ts=ts), "live-events").reason == "invalid_timestamp"


def test_nanoseconds_in_rfc_3339_text_are_read_to_the_microsecond(scorer: Scorer) -> None:
    at = datetime.fromtimestamp(TS / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    score(scorer, live(ts=f"{at}.123456789Z"), "live-events")
    assert user(scorer)["interactions"] == 1


def test_the_producers_validator_checks_the_base_currency_bound() -> None:
    validator = Settings(clickhouse_url="memory://").validator()
    data = orjson.loads(order("b1", "o-b", "1000000000000", currency="USD"))
    with pytest.raises(Rejection) as info:
        validator.check("order", data, int(NOW.timestamp() * 1000))
    assert (info.value.reason, info.value.field) == ("invalid_amount", "amount")
    assert "base currency" in info.value.detail
