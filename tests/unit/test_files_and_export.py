"""Event files (JSONL, CSV), the published JSON Schemas, and the produce tool's summary and pace."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeline.produce import Pacer, Report
from schemas.events import EVENT_MODELS, Kind
from schemas.export import all_schemas, event_schema, render, score_schema
from schemas.files import format_of, read_csv, read_events, read_jsonl
from schemas.scores import ScoreDocument
from schemas.validation import (
    INVALID_AMOUNT,
    NOT_AN_OBJECT,
    NOT_JSON,
    NOT_UTF8,
    UNKNOWN_FIELD,
    UNKNOWN_TYPE,
    Rejection,
)

PUBLISHED = Path(__file__).resolve().parents[2] / "schemas" / "json"
TS = 1_700_000_000_000
EXAMPLES: dict[Kind, dict[str, Any]] = {
    "live": {
        "event_id": "e1", "type": "watch", "user_id": "u1", "ts": "2026-11-20T20:00:00+08:00",
        "room_id": "room-1", "session_id": "s-1", "seconds": 120, "props": {"app": "ios"},
    },
    "chat": {
        "event_id": "e2", "type": "message", "user_id": "u1", "ts": TS, "group_id": "g-1",
        "text": "你好，有优惠吗",
    },
    "order": {
        "event_id": "e3", "type": "order_paid", "user_id": "u1", "ts": TS, "order_id": "o-1",
        "amount": "129.90", "currency": "CNY", "items": [{"sku": "a", "qty": 1}],
        "channel": "live", "room_id": "room-1",
    },
    "touch": {
        "event_id": "e4", "type": "touch_clicked", "user_id": "u1", "ts": TS,
        "campaign_id": "c-1", "channel": "wecom", "trigger_id": "t-1",
    },
}  # fmt: skip


def conforms(schema: dict[str, Any], value: Any) -> bool:
    """Whether `value` is valid against a published schema, checked by a real validator."""
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return bool(validator(schema).is_valid(value))


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _reasons(records: list[Any]) -> list[tuple[int, str | None, str | None]]:
    return [(line, r.reason, r.field) for line, r in records if isinstance(r, Rejection)]


def test_jsonl_lines_become_objects_and_bad_lines_rejections(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "events.jsonl",
        b'{"event_id": "e1", "props": {"a": [1]}}\n'
        b"\n"
        b"{not json\n"
        b"[1, 2]\n"
        b'  {"event_id": "e2"}  \r\n'
        b'"text"\n'
        b'{"event_id": "\xff"}\n',
    )
    records = list(read_jsonl(path))
    assert [line for line, _ in records] == [1, 3, 4, 5, 6, 7]
    assert records[0] == (1, {"event_id": "e1", "props": {"a": [1]}})
    assert records[3] == (5, {"event_id": "e2"})
    assert _reasons(records) == [
        (3, NOT_JSON, None), (4, NOT_AN_OBJECT, None), (6, NOT_AN_OBJECT, None),
        (7, NOT_UTF8, None),
    ]  # fmt: skip


def test_csv_rows_empty_cells_are_absent_and_json_cells_parsed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "orders.csv",
        "\ufeffevent_id,type,user_id,ts,amount,currency,items,props,coupon_id\n"
        'e1,order_paid,u1,1700000000000,99.50,CNY,"[{""sku"": ""a""}]","{""k"": ""v, w""}",\n'
        "e2,order_paid,u2,1700000000000,10,CNY,2,,c-9\n"
        "e3,order_paid,u3,1700000000000,10,CNY,,{bad,\n"
        "e4,order_paid,u4,1700000000000,10,CNY,,,,surplus\n"
        '"e5",order_paid,u5,1700000000000,10,CNY,,"{""note"":\n""two lines""}",\n'
        "e6,order_paid,u6,1700000000000,10,CNY\n".encode()
        + b"e7,order_paid,\xff,1,1,CNY\n",
    )
    records = list(read_csv(path))

    def row(n: int, **cells: Any) -> dict[str, Any]:
        base = {"type": "order_paid", "ts": "1700000000000", "amount": "10", "currency": "CNY"}
        return {"event_id": f"e{n}", "user_id": f"u{n}", **base, **cells}

    assert records[0] == (2, row(1, amount="99.50", items=[{"sku": "a"}], props={"k": "v, w"}))
    assert records[1] == (3, row(2, items=2, coupon_id="c-9"))
    assert records[4] == (7, row(5, props={"note": "two lines"}))  # a row's last line
    assert records[5] == (8, row(6))
    assert _reasons(records) == [
        (4, NOT_JSON, "props"), (5, UNKNOWN_FIELD, None), (9, NOT_UTF8, "user_id"),
    ]  # fmt: skip


def test_formats_from_extensions(tmp_path: Path) -> None:
    assert format_of(Path("a.jsonl")) == format_of(Path("B.NDJSON")) == "jsonl"
    assert format_of(Path("a.csv")) == "csv"
    assert format_of(Path("a.txt")) is None
    path = _write(tmp_path, "a.txt", b'{"a": 1}\n')
    assert list(read_events(path, "jsonl")) == [(1, {"a": 1})]
    with pytest.raises(ValueError, match="unknown format"):
        read_events(path, "xml")


def test_published_schemas_are_the_generated_ones() -> None:
    generated = all_schemas()
    assert {p.name for p in PUBLISHED.iterdir()} == set(generated), "run `lifecycle schema export`"
    for name, schema in generated.items():
        published = (PUBLISHED / name).read_text(encoding="utf-8")
        assert published == render(schema), f"{name} drifted: run `lifecycle schema export`"
    assert set(generated) == {
        "live-events.schema.json", "chat-events.schema.json", "order-events.schema.json",
        "touch-events.schema.json", "score-document.schema.json",
    }  # fmt: skip


def test_per_type_fields_are_in_the_schema() -> None:
    watch = {k: v for k, v in EXAMPLES["live"].items() if k != "seconds"}
    assert not conforms(event_schema("live"), watch)
    assert conforms(event_schema("live"), {**watch, "type": "like"})
    message = {k: v for k, v in EXAMPLES["chat"].items() if k != "text"}
    assert not conforms(event_schema("chat"), message)
    assert conforms(event_schema("chat"), {**message, "type": "join_group"})
    assert not conforms(event_schema("chat"), {**message, "type": "join_group", "group_id": None})


def test_score_schema_accepts_a_score_document() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    document = ScoreDocument(
        user_id="u1", stage="new", stage_since=now, order_count=1, refund_count=0,
        monetary=129.9, currency="CNY", interactions=3, reactivations=0, first_paid_at=now,
        last_paid_at=now, last_interaction_at=now, last_event_at=now, version=4, updated_at=now,
    )  # fmt: skip
    schema = score_schema()
    assert conforms(schema, document.model_dump(mode="json"))
    assert not conforms(schema, {**document.model_dump(mode="json"), "stage": "gone"})
    assert schema["x-topic"] == "user-scores"


def test_summary_groups_rejections_by_reason_with_lines_and_fields() -> None:
    report = Report(sent=7)
    for line, reason, field in [
        (4, INVALID_AMOUNT, "amount"), (7, UNKNOWN_TYPE, "type"), (9, INVALID_AMOUNT, "amount"),
    ]:  # fmt: skip
        report.rejected.append((line, Rejection(reason, field, "detail")))
    assert report.summary("order-events") == (
        "sent 7 to order-events\n"
        "rejected 3: invalid_amount x2 (lines 4, 9: amount), unknown_type x1 (line 7: type)"
    )
    assert report.exit_code == 1
    many = Report(rejected=[(n, Rejection(NOT_JSON, None, "x")) for n in range(1, 8)])
    assert many.rejection_summary() == "rejected 7: not_json x7 (lines 1, 2, 3, 4, 5, ...)"
    assert Report(sent=2).summary("t") == "sent 2 to t\nrejected 0"
    assert Report(sent=2).exit_code == 0
    assert Report(sent=1, failed=1, first_error="KafkaTimeoutError: x").exit_code == 1


def test_pacer_sleeps_to_the_rate_on_its_clock() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    pacer = Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    assert now[0] == pytest.approx(101.0)
    now[0] += 10  # a slow source: no burst to catch up with the schedule afterwards
    pacer.wait()
    pacer.wait()
    assert slept == [0.25] * 5
    Pacer(None, clock=lambda: 1 / 0, sleep=sleep).wait()  # no rate: never looks at the clock


@pytest.mark.parametrize("kind", list(EVENT_MODELS))
def test_each_schema_accepts_a_valid_example_and_names_its_topic(kind: Kind) -> None:
    schema = event_schema(kind)
    example = EXAMPLES[kind]
    EVENT_MODELS[kind].model_validate(example)  # the example is valid for the model too
    assert conforms(schema, example)
    assert schema["x-topic"] == f"{kind}-events"
    assert schema["$id"] == f"urn:lifecycle:{kind}-events:schema_version:1"
    assert "schema_version 1" in schema["title"]
    assert not conforms(schema, {**example, "type": "nope"})
    assert not conforms(schema, {**example, "surprise": 1})
    assert not conforms(schema, {k: v for k, v in example.items() if k != "user_id"})


@pytest.mark.parametrize("amount", [-5, "-5.00", "abc", 10**12 + 1, "1000000000000.01"])
def test_order_schema_rejects_amounts_out_of_bounds(amount: object) -> None:
    assert not conforms(event_schema("order"), {**EXAMPLES["order"], "amount": amount})


@pytest.mark.parametrize("amount", [0, "0.00", "129.90", 10**12])
def test_order_schema_accepts_free_orders_up_to_the_bound(amount: object) -> None:
    assert conforms(event_schema("order"), {**EXAMPLES["order"], "amount": amount})


@pytest.mark.parametrize(
    ("amount", "currency", "valid"),
    [("1.50", "JPY", False), (1.5, "JPY", False), ("0.01", "KRW", False), ("100", "JPY", True),
     (100, "KRW", True), ("1.255", "CNY", False), ("1.25", "CNY", True)],
)  # fmt: skip
def test_order_schema_publishes_minor_units(amount: object, currency: str, valid: bool) -> None:
    example = {**EXAMPLES["order"], "amount": amount, "currency": currency}
    assert conforms(event_schema("order"), example) is valid


@pytest.mark.parametrize("user_id", ["bh/slash10", "a b", "..", "x?y", "%41", "é"])
def test_event_schemas_publish_the_id_alphabet(user_id: str) -> None:
    for kind in ("live", "chat", "order", "touch"):
        assert not conforms(event_schema(kind), {**EXAMPLES[kind], "user_id": user_id})


def test_event_schemas_publish_the_earliest_time_for_milliseconds() -> None:
    seconds = {**EXAMPLES["live"], "ts": 1796039086}
    assert not conforms(event_schema("live"), seconds)
    assert conforms(event_schema("live"), {**seconds, "ts": 1796039086000})


@pytest.mark.parametrize(
    ("ts", "valid"),
    [("1989-12-31T23:59:59Z", False), ("2026-11-30T12:00:00", False), ("100000000000", False),
     ("2026-11-30T20:00:00+08:00", True), ("1796039086000", True), ("1990-01-01T00:00:00Z", True)],
)  # fmt: skip
def test_event_schemas_publish_the_time_bounds_for_text_too(ts: str, valid: bool) -> None:
    assert conforms(event_schema("live"), {**EXAMPLES["live"], "ts": ts}) is valid


@pytest.mark.parametrize(("amount", "currency"), [("1500.0", "JPY"), ("100.000000", "CNY")])
def test_trailing_zeros_the_pipeline_accepts_conform(amount: str, currency: str) -> None:
    example = {**EXAMPLES["order"], "amount": amount, "currency": currency}
    assert conforms(event_schema("order"), example)
