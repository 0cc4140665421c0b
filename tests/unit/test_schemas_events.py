"""Per-topic event models (live, chat, order, touch) and parse_event on raw bytes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas.chat import ChatEvent
from schemas.events import EVENT_MODELS, TOPIC_KINDS, Kind, parse_event
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from schemas.touch import TouchEvent

TS = 1_700_000_000_000
BASE: dict[str, Any] = {"event_id": "e1", "user_id": "u1", "ts": TS}
LIVE = {**BASE, "room_id": "room-1", "session_id": "s-1"}
ORDER = {
    **BASE,
    "type": "order_paid",
    "order_id": "o-1",
    "amount": "99.50",
    "currency": "CNY",
}
TOUCH = {**BASE, "type": "touch_clicked", "campaign_id": "c-1", "channel": "wecom"}


def raw(data: dict[str, Any], **changes: Any) -> bytes:
    merged = {**data, **changes}
    return orjson.dumps({k: v for k, v in merged.items() if v is not ...})


def rejected(kind: Kind, payload: bytes | str) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        parse_event(kind, payload)
    return list(info.value.errors())


def an_order(payload: bytes) -> OrderEvent:
    event = parse_event("order", payload)
    assert isinstance(event, OrderEvent)
    return event


def test_every_topic_kind_has_a_model() -> None:
    assert TOPIC_KINDS == ("live", "chat", "order", "touch")
    expected = {"live": LiveEvent, "chat": ChatEvent, "order": OrderEvent, "touch": TouchEvent}
    assert expected == EVENT_MODELS


# -- live ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("watch", "seconds", 30),
        ("comment", "text", "nice"),
        ("gift", "value", 0),
        ("product_click", "product_id", "p-1"),
        ("coupon_claim", "coupon_id", "cp-1"),
    ],
)
def test_live_types_need_their_field(kind: str, field: str, value: Any) -> None:
    event = parse_event("live", raw(LIVE, type=kind, **{field: value}))
    assert isinstance(event, LiveEvent)
    assert getattr(event, field) == value
    errors = rejected("live", raw(LIVE, type=kind))
    assert field in errors[0]["msg"]


@pytest.mark.parametrize(
    "kind", ["room_enter", "room_leave", "like", "share", "follow", "reservation", "private_join"]
)
def test_live_types_without_extra_fields(kind: str) -> None:
    event = parse_event("live", raw(LIVE, type=kind))
    assert isinstance(event, LiveEvent)
    assert event.type == kind
    assert event.room_id == "room-1"


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "watch", "seconds": 0},
        {"type": "watch", "seconds": -5},
        {"type": "watch", "seconds": 86_401},
        {"type": "gift", "value": -1},
        {"type": "comment", "text": "x" * 2001},
        {"type": "like", "room_id": ...},
        {"type": "like", "session_id": ...},
        {"type": "like", "room_id": ""},
        {"type": "purchase"},
        {"type": "like", "amount": "1.00"},
    ],
)
def test_bad_live_events_are_rejected(changes: dict[str, Any]) -> None:
    assert rejected("live", raw(LIVE, **changes))


def test_live_nan_seconds_is_rejected() -> None:
    payload = raw(LIVE, type="watch", seconds=1).replace(b'"seconds":1', b'"seconds":NaN')
    assert rejected("live", payload)


# -- chat ---------------------------------------------------------------------------------


def test_one_to_one_message_needs_no_group() -> None:
    event = parse_event("chat", raw(BASE, type="message", text="hello"))
    assert isinstance(event, ChatEvent)
    assert event.group_id is None


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({"type": "message", "text": "hi"}, True),
        ({"type": "reply", "text": "hi", "group_id": "g"}, True),
        ({"type": "join_group", "group_id": "g"}, True),
        ({"type": "leave_group", "group_id": "g"}, True),
        ({"type": "message"}, False),
        ({"type": "reply"}, False),
        ({"type": "join_group"}, False),
        ({"type": "leave_group", "group_id": ""}, False),
        ({"type": "message", "text": "x" * 4001}, False),
        ({"type": "like"}, False),
    ],
)
def test_chat_per_type_fields(changes: dict[str, Any], ok: bool) -> None:
    payload = raw(BASE, **changes)
    if ok:
        assert parse_event("chat", payload).type == changes["type"]
    else:
        assert rejected("chat", payload)


# -- order --------------------------------------------------------------------------------


def test_valid_order() -> None:
    event = an_order(raw(ORDER, items=[{"sku": "a", "qty": 2}], room_id="r"))
    assert event.amount == Decimal("99.50")
    assert event.amount_cents == 9950
    assert event.currency == "CNY"
    assert event.channel == "other"
    assert event.items == [{"sku": "a", "qty": 2}]


@pytest.mark.parametrize("kind", ["order_created", "order_paid", "order_refunded"])
def test_order_types(kind: str) -> None:
    assert parse_event("order", raw(ORDER, type=kind)).type == kind


@pytest.mark.parametrize("amount", [12.5, "12.50", 1, "0.01"])
def test_positive_amounts_are_accepted(amount: Any) -> None:
    assert an_order(raw(ORDER, amount=amount)).amount == Decimal(str(amount))


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        (-1, "greater_than_equal"),
        ("-0.01", "greater_than_equal"),
        ("1000000000000.01", "less_than_equal"),
        (True, "value_error"),
        (False, "value_error"),
        ("NaN", "finite_number"),
        ("Infinity", "finite_number"),
        ("abc", "decimal_parsing"),
        (None, "decimal_type"),
    ],
)
def test_bad_amounts_are_rejected(amount: Any, error: str) -> None:
    errors = rejected("order", raw(ORDER, amount=amount))
    assert [(e["loc"], e["type"]) for e in errors] == [(("amount",), error)]


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_json_amount_tokens_are_rejected(token: bytes) -> None:
    payload = raw(ORDER, amount=1).replace(b'"amount":1', b'"amount":' + token)
    errors = rejected("order", payload)
    assert errors[0]["loc"] == ("amount",)


@pytest.mark.parametrize("currency", ["usd", "US", "USDD", "", "U$D", "12A", " USD"])
def test_currency_must_be_three_capital_letters(currency: str) -> None:
    errors = rejected("order", raw(ORDER, currency=currency))
    assert errors[0]["loc"] == ("currency",)


@pytest.mark.parametrize(
    "changes",
    [
        {"order_id": ...},
        {"order_id": ""},
        {"currency": ...},
        {"amount": ...},
        {"channel": "tv"},
        {"type": "order_shipped"},
        {"discount": "1.00"},
    ],
)
def test_bad_orders_are_rejected(changes: dict[str, Any]) -> None:
    assert rejected("order", raw(ORDER, **changes))


@pytest.mark.parametrize("channel", ["live", "mini_program", "community", "store", "other"])
def test_order_channels(channel: str) -> None:
    assert an_order(raw(ORDER, channel=channel)).channel == channel


# -- touch --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["touch_sent", "touch_opened", "touch_clicked"])
def test_touch_types(kind: str) -> None:
    event = parse_event("touch", raw(TOUCH, type=kind, trigger_id="t-1"))
    assert isinstance(event, TouchEvent)
    assert event.trigger_id == "t-1"


@pytest.mark.parametrize(
    "changes",
    [{"campaign_id": ...}, {"channel": ...}, {"campaign_id": ""}, {"type": "touch_liked"}],
)
def test_bad_touches_are_rejected(changes: dict[str, Any]) -> None:
    assert rejected("touch", raw(TOUCH, **changes))


# -- parse_event ---------------------------------------------------------------------------


def test_parse_event_takes_bytes_and_text() -> None:
    payload = raw(TOUCH)
    assert parse_event("touch", payload) == parse_event("touch", payload.decode())


def test_event_of_another_topic_is_rejected() -> None:
    errors = rejected("live", raw(ORDER))
    assert {e["loc"][0] for e in errors} >= {"type", "order_id", "room_id"}


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", "json_invalid"),
        (b"{", "json_invalid"),
        (b"\xff\xfe", "json_invalid"),
        (b"[]", "model_type"),
        (b"null", "model_type"),
        (b'"text"', "model_type"),
    ],
)
def test_malformed_payloads_are_validation_errors(payload: bytes, error: str) -> None:
    assert rejected("chat", payload)[0]["type"] == error
