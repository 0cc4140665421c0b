"""`lifecycle backfill`'s pure parts: routing by type, event-time order, the summary, headers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka.partitioner.default import murmur2

from pipeline.backfill import (
    Delays,
    Sent,
    check_backfill_id,
    end_markers,
    new_backfill_id,
    summary,
)
from pipeline.backfill_plan import KIND_OF_TYPE, Plan, kind_of_record, plan, topics_by_kind
from pipeline.batched_sends import BatchedSends
from pipeline.produce import Report
from pipeline.settings import Settings
from schemas.events import EVENT_MODELS
from schemas.files import read_csv, read_jsonl
from schemas.headers import (
    BACKFILL_END_HEADER,
    BACKFILL_HEADER,
    backfill_headers,
    end_marker_headers,
    is_end_marker,
)
from schemas.validation import MISSING_FIELD, UNKNOWN_TYPE, Rejection

TS = 1_700_000_000_000
NOW = (TS + 86_400_000) / 1000
SETTINGS = Settings(
    clickhouse_url="memory://",
    topic_live="t-live",
    topic_chat="t-chat",
    topic_order="t-order",
    topic_touch="t-touch",
    max_message_bytes=1024,
)
TOPICS = topics_by_kind(SETTINGS)


def live(n: int, ts: int | str, **changes: Any) -> dict[str, Any]:
    event = {"event_id": f"l{n}", "type": "like", "user_id": f"u{n % 3}", "ts": ts,
             "room_id": "r1", "session_id": "s1"}  # fmt: skip
    return {**event, **changes}


def chat(n: int, ts: int | str, **changes: Any) -> dict[str, Any]:
    event = {"event_id": f"c{n}", "type": "message", "user_id": f"u{n % 3}", "ts": ts,
             "text": "hi"}  # fmt: skip
    return {**event, **changes}


def order(n: int, ts: int | str, **changes: Any) -> dict[str, Any]:
    event = {"event_id": f"o{n}", "type": "order_paid", "user_id": f"u{n % 3}", "ts": ts,
             "order_id": f"order-{n}", "amount": "9.90", "currency": "CNY"}  # fmt: skip
    return {**event, **changes}


def touch(n: int, ts: int | str, **changes: Any) -> dict[str, Any]:
    event = {"event_id": f"t{n}", "type": "touch_opened", "user_id": f"u{n % 3}", "ts": ts,
             "campaign_id": "c1", "channel": "wecom"}  # fmt: skip
    return {**event, **changes}


def _plan(lines: list[bytes], tmp_path: Path) -> Plan:
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return plan(read_jsonl(path), TOPICS, SETTINGS.validator(), clock=lambda: NOW)


def test_every_type_names_one_kind() -> None:
    for kind, model in EVENT_MODELS.items():
        example = model.model_json_schema()["properties"]["type"]
        types = example.get("enum") or [example.get("const")]
        assert {t: KIND_OF_TYPE[t] for t in types} == dict.fromkeys(types, kind)
    assert KIND_OF_TYPE["order_refunded"] == "order"
    assert KIND_OF_TYPE["touch_clicked"] == "touch"
    assert KIND_OF_TYPE["join_group"] == "chat"
    assert KIND_OF_TYPE["private_join"] == "live"


def test_kind_of_record_rejects_a_missing_or_unknown_type() -> None:
    assert kind_of_record({"type": "watch"}) == "live"
    with pytest.raises(Rejection) as missing:
        kind_of_record({"event_id": "e"})
    assert (missing.value.reason, missing.value.field) == (MISSING_FIELD, "type")
    for bad in ("order_shipped", 3, ["like"], ""):
        with pytest.raises(Rejection) as unknown:
            kind_of_record({"type": bad})
        assert (unknown.value.reason, unknown.value.field) == (UNKNOWN_TYPE, "type")


def test_events_are_routed_by_type_and_sorted_by_event_time(tmp_path: Path) -> None:
    planned = _plan(
        [
            orjson.dumps(order(1, TS + 50)),  # 1
            orjson.dumps(live(2, TS + 10)),  # 2
            orjson.dumps(touch(3, TS + 30)),  # 3
            orjson.dumps(chat(4, TS + 10)),  # 4: same time as line 2, after it
            orjson.dumps(live(5, "2023-11-14T22:13:20.000+00:00")),  # 5: TS as RFC 3339
            orjson.dumps(chat(6, TS + 10)),  # 6: same time again
        ],
        tmp_path,
    )
    assert planned.report.rejected == []
    assert [(e.line, e.ts_ms, e.topic) for e in planned.events] == [
        (5, TS, "t-live"),
        (2, TS + 10, "t-live"),
        (4, TS + 10, "t-chat"),
        (6, TS + 10, "t-chat"),
        (3, TS + 30, "t-touch"),
        (1, TS + 50, "t-order"),
    ]
    first = planned.events[0]
    assert first.key == b"u2"
    # The value is the validated event, serialized as `lifecycle produce` sends it.
    assert orjson.loads(first.value) == {
        "event_id": "l5", "type": "like", "user_id": "u2", "ts": "2023-11-14T22:13:20Z",
        "schema_version": 1, "room_id": "r1", "session_id": "s1",
    }  # fmt: skip


def test_rejected_lines_are_summarised_with_their_numbers(tmp_path: Path) -> None:
    planned = _plan(
        [
            orjson.dumps(order(1, TS)),  # 1
            b"{not json",  # 2
            orjson.dumps(order(3, TS, amount="-1")),  # 3 invalid_amount
            orjson.dumps(live(4, TS, type="dance")),  # 4 unknown_type
            orjson.dumps({k: v for k, v in chat(5, TS).items() if k != "type"}),  # 5
            orjson.dumps(touch(6, TS * 10)),  # 6 future_timestamp
            orjson.dumps(live(7, TS, props={"pad": "x" * 2000})),  # 7 too_large
            orjson.dumps(order(8, TS, amount="7")),  # 8
            orjson.dumps(order(9, TS, amount="-2")),  # 9 invalid_amount
        ],
        tmp_path,
    )
    assert [e.line for e in planned.events] == [1, 8]
    assert planned.report.rejection_summary() == (
        "rejected 7: not_json x1 (line 2), invalid_amount x2 (lines 3, 9: amount), "
        "unknown_type x1 (line 4: type), missing_field x1 (line 5: type), "
        "future_timestamp x1 (line 6: ts), too_large x1 (line 7)"
    )
    sent = Sent(sent=2, markers=16)
    assert summary(planned, sent, 4, "b1").splitlines() == [
        "backfilled 2 events, end markers on the 4 input topics (id b1)",
        planned.report.rejection_summary(),
    ]


def test_csv_rows_of_mixed_kinds(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        "event_id,type,user_id,ts,room_id,session_id,text,order_id,amount,currency\n"
        f"o1,order_paid,alice,{TS + 5},,,,order-1,19.90,CNY\n"  # 2
        f"l1,like,alice,{TS},r1,s1,,,,\n"  # 3
        f"c1,message,bob,{TS + 1},,,hello,,,\n"  # 4
        f"c2,message,bob,{TS + 1},r1,,hello,,,\n",  # 5 room_id is not a chat field
        encoding="utf-8",
    )
    planned = plan(read_csv(path), TOPICS, SETTINGS.validator(), clock=lambda: NOW)
    assert [(e.line, e.topic) for e in planned.events] == [
        (3, "t-live"),
        (4, "t-chat"),
        (2, "t-order"),
    ]
    assert planned.report.rejection_summary() == "rejected 1: unknown_field x1 (line 5: room_id)"


def test_summary_of_failed_sends_and_no_rejections() -> None:
    planned = Plan([], Report())
    assert summary(planned, Sent(sent=5), 4, "b2") == (
        "backfilled 5 events, end markers on the 4 input topics (id b2)\nrejected 0"
    )
    failed = Sent(sent=3)
    failed.fail(TimeoutError("slow"), 2)
    assert summary(planned, failed, 4, "b2").splitlines() == [
        "backfilled 3 events, end markers on the 4 input topics (id b2)",
        "failed 2: TimeoutError: slow",
        "rejected 0",
    ]


def test_headers_of_events_and_end_markers() -> None:
    assert backfill_headers("b-1") == [(BACKFILL_HEADER, b"b-1")]
    assert end_marker_headers("b-1") == [(BACKFILL_END_HEADER, b"b-1")]
    assert BACKFILL_HEADER == "lifecycle-backfill"
    assert BACKFILL_END_HEADER == "lifecycle-backfill-end"
    assert is_end_marker(end_marker_headers("b-1"))
    assert is_end_marker((("other", b""), (BACKFILL_END_HEADER, b"x")))
    assert not is_end_marker(backfill_headers("b-1"))
    assert not is_end_marker(None)
    assert not is_end_marker(())


def test_an_end_marker_on_every_partition_of_each_topic() -> None:
    markers = end_markers({"a": [2, 0, 1], "b": [0]})
    assert markers == [("a", 0), ("a", 1), ("a", 2), ("b", 0)]


@pytest.mark.parametrize("remember_keys", [False, True])
def test_events_go_where_the_sdk_sends_a_users_live_events(remember_keys: bool) -> None:
    """The same murmur2 placement as kafka-python (and the Java client), each topic's
    partitions taken in order whatever order they are given in."""
    placed = BatchedSends(None, {"t": [3, 1, 2, 0], "u": [0, 1, 2]}, remember_keys)  # type: ignore[arg-type]

    async def placements() -> None:
        for _ in range(2):
            for n in range(500):
                key = f"user-{n}".encode()
                assert await placed.partition_of("t", key) == (murmur2(key) & 0x7FFFFFFF) % 4
                assert await placed.partition_of("u", key) == (murmur2(key) & 0x7FFFFFFF) % 3

    asyncio.run(placements())


def test_backfill_ids() -> None:
    assert len(new_backfill_id()) == 32
    assert new_backfill_id() != new_backfill_id()
    assert check_backfill_id("2025-import.v2:a_b") == "2025-import.v2:a_b"
    for bad in ("", "has space", "x" * 129, "ünï"):
        with pytest.raises(Exception, match="backfill id"):
            check_backfill_id(bad)


def test_delays_follow_the_rate_on_their_clock() -> None:
    now = [10.0]
    delays = Delays(4.0, clock=lambda: now[0])
    assert delays.next() == 0.0
    assert delays.next() == pytest.approx(0.25)
    now[0] += 0.1
    assert delays.next() == pytest.approx(0.4)  # the schedule, not the wake-up
    now[0] += 5.0
    assert delays.next() == 0.0  # fell behind: no burst owed
