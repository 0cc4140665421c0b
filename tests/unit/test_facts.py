"""From validated events to Facts: base-currency cents and unknown currencies."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from pipeline.domain.facts import UnknownCurrency, canonical_payload, to_base_cents, to_fact
from pipeline.settings import DEFAULT_FX_TO_CNY
from schemas.chat import ChatEvent
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from schemas.touch import TouchEvent

TS = 1_700_000_000_000
AT = datetime.fromtimestamp(TS / 1000, tz=UTC)
FX = {"CNY": 1.0, "USD": 7.1, "JPY": 0.047, "HKD": 0.91}


@pytest.mark.parametrize(
    ("amount", "currency", "cents"),
    [
        ("10.00", "CNY", 1000),
        ("0.01", "CNY", 1),
        ("10.00", "USD", 7100),
        ("1234.56", "JPY", 5802),  # 5802.432 cents
        ("99.99", "HKD", 9099),  # 9099.09 cents
        ("9999999999999999.99", "CNY", 999999999999999999),
    ],
)
def test_to_base_cents_converts_exactly(amount: str, currency: str, cents: int) -> None:
    assert to_base_cents(Decimal(amount), currency, FX) == cents


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        ("0.05", 36),  # 35.5 -> 36 (even)
        ("0.15", 106),  # 106.5 -> 106 (even)
        ("0.25", 178),  # 177.5 -> 178 (even)
        ("0.35", 248),  # 248.5 -> 248 (even)
    ],
)
def test_to_base_cents_rounds_half_to_even(amount: str, cents: int) -> None:
    assert to_base_cents(Decimal(amount), "USD", FX) == cents


def test_rate_is_used_as_written_not_as_a_binary_float() -> None:
    # 0.1 as a binary float is 0.1000000000000000055...; the conversion goes through str().
    assert to_base_cents(Decimal("5.00"), "XXX", {"XXX": 0.1}) == 50
    assert to_base_cents(Decimal("0.05"), "XXX", {"XXX": 0.1}) == 0  # 0.5 cent -> 0 (even)


def test_unknown_currency_names_it_and_the_known_ones() -> None:
    with pytest.raises(UnknownCurrency) as info:
        to_base_cents(Decimal("1.00"), "XYZ", FX)
    message = str(info.value)
    assert "XYZ" in message
    assert "CNY, HKD, JPY, USD" in message
    assert isinstance(info.value, ValueError)


def test_default_rates_are_relative_to_cny() -> None:
    assert DEFAULT_FX_TO_CNY["CNY"] == 1.0
    assert to_base_cents(Decimal("1.00"), "EUR", DEFAULT_FX_TO_CNY) == 770


def _order(kind: str = "order_paid", **extra: object) -> OrderEvent:
    data: dict[str, object] = {
        "event_id": "e1",
        "user_id": "u1",
        "type": kind,
        "ts": TS,
        "order_id": "o1",
        "amount": "12.34",
        "currency": "USD",
    }
    data.update(extra)
    return OrderEvent.model_validate(data)


def test_order_becomes_a_fact_in_base_cents() -> None:
    fact = to_fact(_order(), FX)
    assert fact.user_id == "u1"
    assert fact.type == "order_paid"
    assert fact.ts_ms == TS
    assert fact.amount_cents == 8761  # 12.34 * 7.1 = 87.614
    assert fact.is_interaction


def test_refund_keeps_a_positive_amount() -> None:
    fact = to_fact(_order("order_refunded", currency="CNY"), FX)
    assert fact.type == "order_refunded"
    assert fact.amount_cents == 1234


def test_order_in_an_unknown_currency_raises() -> None:
    with pytest.raises(UnknownCurrency):
        to_fact(_order(currency="GBP"), FX)


@pytest.mark.parametrize(
    "event",
    [
        LiveEvent(
            event_id="e", user_id="u1", ts=AT, type="gift", room_id="r", session_id="s", value=5
        ),
        ChatEvent(event_id="e", user_id="u1", ts=AT, type="message", text="hi"),
        TouchEvent(
            event_id="e", user_id="u1", ts=AT, type="touch_sent", campaign_id="c", channel="p"
        ),
    ],
)
def test_non_order_events_carry_no_amount(event: LiveEvent | ChatEvent | TouchEvent) -> None:
    fact = to_fact(event, {})  # no rates needed: nothing to convert
    assert fact.amount_cents == 0
    assert fact.type == event.type
    assert fact.ts_ms == TS


def test_touch_sent_fact_is_not_an_interaction() -> None:
    event = TouchEvent(
        event_id="e", user_id="u1", ts=AT, type="touch_sent", campaign_id="c", channel="p"
    )
    assert not to_fact(event, FX).is_interaction


@pytest.mark.parametrize(
    "event",
    [
        LiveEvent(event_id="e1", type="gift", user_id="u1", ts=AT, room_id="r", session_id="s",
                  value=5, props={"b": 1, "a": [1, 2]}),
        ChatEvent(event_id="e2", type="message", user_id="u1", ts=AT, text="好"),
        TouchEvent(event_id="e3", type="touch_sent", user_id="u1", ts=AT, campaign_id="c",
                   channel="p"),
        OrderEvent(event_id="e4", type="order_paid", user_id="u1", ts=AT, order_id="o1",
                   amount=Decimal("100.50"), currency="CNY", items=[{"sku": "x"}]),
    ],
)  # fmt: skip
def test_canonical_payload_keeps_the_bytes_event_ids_were_remembered_with(
    event: LiveEvent | ChatEvent | OrderEvent | TouchEvent,
) -> None:
    """Payload digests are kept in users' state: the canonical form must stay byte for byte
    what `model_dump_json` gave, or a replay after an upgrade reads as reused ids."""
    if isinstance(event, OrderEvent):
        expected = event.model_dump_json(exclude={"props", "amount"}).encode()
        expected += format(event.amount.normalize(), "f").encode()
    else:
        expected = event.model_dump_json(exclude={"props"}).encode()
    if event.props:
        expected += orjson.dumps(event.props, option=orjson.OPT_SORT_KEYS)
    assert canonical_payload(event) == expected
