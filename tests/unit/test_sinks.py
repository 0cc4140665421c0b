"""BatchingSink over the in-memory client: batching per table, retries, backlog limit, rows
the store refuses; the stores' errors told apart; the dead-letter record of a refused row."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from pipeline.dead_letters import refused_row_letter
from sinks.base import BatchingSink, ClickHouseClient, RefusedRow, Row
from sinks.chdb import _insert_error
from sinks.ddl import TABLES
from sinks.exceptions import SinkError, SinkRefused, column_named
from sinks.memory import MemoryClient


class RecordingClient(MemoryClient):
    """A memory client that remembers each insert call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []

    def insert(self, table: str, rows: list[Row]) -> None:
        self.calls.append((table, len(rows)))
        super().insert(table, rows)


class FlakyClient(MemoryClient):
    """Refuses inserts (into every table, or only some) while `down` is set."""

    def __init__(self, down_tables: set[str] | None = None) -> None:
        super().__init__()
        self.down = True
        self.down_tables = down_tables
        self.attempts = 0

    def insert(self, table: str, rows: list[Row]) -> None:
        self.attempts += 1
        if self.down and (self.down_tables is None or table in self.down_tables):
            raise ConnectionError("store unreachable")
        super().insert(table, rows)


def test_flush_writes_one_batch_per_table() -> None:
    client = RecordingClient()
    sink = BatchingSink(client)
    for i in range(3):
        sink.add("events", {"event_id": f"e{i}"})
    sink.add("user_scores", {"user_id": "u1"})
    assert sink.pending == 4
    assert client.calls == []  # nothing written before flush

    assert sink.flush() == {"events": 3, "user_scores": 1}
    assert sorted(client.calls) == [("events", 3), ("user_scores", 1)]
    assert client.query("SELECT * FROM events") == [{"event_id": f"e{i}"} for i in range(3)]
    assert sink.pending == 0
    assert dict(sink.rows_written) == {"events": 3, "user_scores": 1}


def test_flush_with_nothing_buffered_writes_nothing() -> None:
    client = RecordingClient()
    sink = BatchingSink(client)
    assert sink.flush() == {}
    sink.add("events", {"event_id": "e"})
    sink.flush()
    assert sink.flush() == {}
    assert client.calls == [("events", 1)]


def test_a_failing_client_keeps_rows_for_the_next_flush() -> None:
    client = FlakyClient()
    sink = BatchingSink(client)
    sink.add("events", {"event_id": "e1"})
    sink.add("events", {"event_id": "e2"})

    with pytest.raises(SinkError, match=r"insert into events failed \(2 rows kept\)") as info:
        sink.flush()
    assert isinstance(info.value.__cause__, ConnectionError)
    assert sink.pending == 2
    assert sink.failed_flushes == 1
    assert client.tables["events"] == []

    sink.add("events", {"event_id": "e3"})
    client.down = False
    assert sink.flush() == {"events": 3}
    assert [r["event_id"] for r in client.tables["events"]] == ["e1", "e2", "e3"]
    assert sink.pending == 0
    assert sink.failed_flushes == 1
    assert sink.rows_written["events"] == 3


def test_a_table_that_fails_does_not_lose_the_tables_already_written() -> None:
    client = FlakyClient(down_tables={"user_scores"})
    sink = BatchingSink(client)
    sink.add("events", {"event_id": "e1"})
    sink.add("user_scores", {"user_id": "u1"})
    with pytest.raises(SinkError, match="user_scores"):
        sink.flush()
    assert client.tables["events"] == [{"event_id": "e1"}]
    assert sink.pending == 1
    assert sink.rows_written["events"] == 1

    client.down = False
    assert sink.flush() == {"user_scores": 1}
    assert client.tables["events"] == [{"event_id": "e1"}]  # not written twice
    assert client.tables["user_scores"] == [{"user_id": "u1"}]


def test_backlog_beyond_max_buffered_raises() -> None:
    client = FlakyClient()
    sink = BatchingSink(client, max_buffered=3)
    for i in range(3):
        sink.add("events", {"event_id": f"e{i}"})
    with pytest.raises(SinkError, match="backlog of 3 rows"):
        sink.add("events", {"event_id": "e3"})
    assert sink.pending == 3

    with pytest.raises(SinkError):
        sink.flush()
    with pytest.raises(SinkError):  # still full: the failed flush freed nothing
        sink.add("events", {"event_id": "e3"})

    client.down = False
    sink.flush()
    sink.add("events", {"event_id": "e3"})  # room again once the store takes writes
    assert sink.pending == 1


def test_rows_of_several_tables_are_added_together_or_not_at_all() -> None:
    client = FlakyClient()
    sink = BatchingSink(client, max_buffered=2)
    sink.add_many([])
    assert sink.pending == 0
    sink.add_many([("events", {"event_id": "e1"}), ("user_scores", {"user_id": "u1"})])
    assert sink.pending == 2
    with pytest.raises(SinkError, match="backlog of 2 rows"):
        sink.add_many([("events", {"event_id": "e2"}), ("triggers", {"id": "t1"})])
    assert sink.pending == 2
    client.down = False
    assert sink.flush() == {"events": 1, "user_scores": 1}


def test_buffered_rows_are_the_callers_dicts_until_flushed() -> None:
    client = MemoryClient()
    sink = BatchingSink(client)
    row = {"event_id": "e1"}
    sink.add("events", row)
    sink.flush()
    row["event_id"] = "changed"
    assert client.tables["events"] == [{"event_id": "e1"}]  # the store kept a copy


def test_abstract_client_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError):
        ClickHouseClient()  # type: ignore[abstract]


# -- MemoryClient -------------------------------------------------------------------------


def test_memory_client_schema_and_unknown_table() -> None:
    client = MemoryClient()
    client.ensure_schema()
    tables = {"events", "stage_transitions", "user_scores", "triggers", "trigger_outcomes"}
    assert set(client.tables) == set(TABLES) == tables
    with pytest.raises(SinkError, match="no table nope"):
        client.insert("nope", [{"a": 1}])


@pytest.mark.parametrize(
    "sql", ["SELECT a FROM events", "SELECT * FROM events WHERE 1", "DELETE * FROM events"]
)
def test_memory_client_answers_only_select_star(sql: str) -> None:
    with pytest.raises(SinkError):
        MemoryClient().query(sql)


def test_memory_client_query_and_close() -> None:
    client = MemoryClient()
    client.insert("stage_transitions", [{"user_id": "u1"}])
    assert client.query("select * from stage_transitions") == [{"user_id": "u1"}]
    client.close()
    assert client.query("SELECT * FROM stage_transitions") == []


# -- rows the store refuses ----------------------------------------------------------------

CHDB_69 = (
    "Code: 69. DB::Exception: Decimal value is too big: 1 digits were read: '1'e17. Expected "
    "to read decimal with scale 2 and precision 18: (while reading the value of key amount): "
    "(at row 2)\n: While executing JSONEachRowRowInputFormat. (ARGUMENT_OUT_OF_BOUND)"
)


def refuse_bad(table: str, row: Row) -> str | None:
    """The store refuses rows marked `bad`, naming the column like chDB does."""
    return CHDB_69 if row.get("bad") else None


class RefusingClient(MemoryClient):
    """Refuses rows marked `bad`; goes down (ConnectionError) after `up_for` more inserts."""

    def __init__(self, up_for: int | None = None) -> None:
        super().__init__(refuse=refuse_bad)
        self.calls: list[tuple[str, list[str]]] = []
        self.up_for = up_for

    def insert(self, table: str, rows: list[Row]) -> None:
        self.calls.append((table, [r["event_id"] for r in rows]))
        if self.up_for is not None:
            if self.up_for == 0:
                raise ConnectionError("store unreachable")
            self.up_for -= 1
        super().insert(table, rows)


def events(n: int, bad: set[int]) -> list[Row]:
    return [{"event_id": f"e{i}", **({"bad": True} if i in bad else {})} for i in range(n)]


def ids(rows: list[Row]) -> list[str]:
    return [r["event_id"] for r in rows]


@pytest.mark.parametrize(
    ("n", "bad"),
    [
        (1, {0}),
        (2, {1}),
        (7, {3}),
        (8, {0, 7}),
        (16, {4, 5, 6}),
        (33, {1, 10, 20, 32}),
        (5, {0, 1, 2, 3, 4}),
    ],
)
def test_refused_rows_are_set_aside_and_the_others_written_in_order(n: int, bad: set[int]) -> None:
    client = RefusingClient()
    sink = BatchingSink(client)
    rows = events(n, bad)
    for row in rows:
        sink.add("events", row)

    written = sink.flush()

    good = [r for r in rows if not r.get("bad")]
    assert written == ({"events": len(good)} if good else {})
    assert ids(client.tables["events"]) == ids(good)  # in the order they were added
    refused = sink.take_refused()
    assert [r.row for r in refused] == [r for r in rows if r.get("bad")]
    assert {(r.table, r.error, r.column, r.summary) for r in refused} == {
        ("events", CHDB_69, "amount", CHDB_69)
    }
    assert sink.pending == 0
    assert sink.rows_written["events"] == len(good)
    assert sink.rows_refused["events"] == len(bad)
    assert sink.failed_flushes == 0
    assert sink.take_refused() == []  # taken once
    # Bisection: about two inserts per refused row per halving, not one per row.
    assert len(client.calls) <= 1 + 2 * len(bad) * max(1, n.bit_length())


def test_a_batch_without_refusals_is_one_insert() -> None:
    client = RefusingClient()
    sink = BatchingSink(client)
    for row in events(10, set()):
        sink.add("events", row)
    assert sink.flush() == {"events": 10}
    assert client.calls == [("events", [f"e{i}" for i in range(10)])]
    assert sink.take_refused() == []


def test_refusals_in_one_table_do_not_hold_the_others() -> None:
    client = RefusingClient()
    sink = BatchingSink(client)
    sink.add("events", {"event_id": "e0", "bad": True})
    sink.add("user_scores", {"event_id": "u0"})
    sink.add("events", {"event_id": "e1"})
    assert sink.flush() == {"events": 1, "user_scores": 1}
    assert ids(client.tables["events"]) == ["e1"]
    assert ids(client.tables["user_scores"]) == ["u0"]
    assert [(r.table, r.row["event_id"]) for r in sink.take_refused()] == [("events", "e0")]
    assert sink.pending == 0


def test_an_outage_while_splitting_keeps_the_rows_not_written_in_order() -> None:
    # 8 rows, e2 refused: [e0..e7] refused, [e0..e3] refused, [e0 e1] written, [e2 e3]
    # refused, then the store goes down: e2, e3 and e4..e7 are kept, in order.
    client = RefusingClient(up_for=3)
    sink = BatchingSink(client)
    for row in events(8, {2}):
        sink.add("events", row)

    with pytest.raises(SinkError, match=r"insert into events failed \(6 rows kept\)") as info:
        sink.flush()
    assert isinstance(info.value.__cause__, ConnectionError)
    assert not isinstance(info.value, SinkRefused)
    assert ids(client.tables["events"]) == ["e0", "e1"]
    assert sink.pending == 6
    assert sink.rows_written["events"] == 2
    assert sink.failed_flushes == 1
    assert sink.take_refused() == []

    sink.add("events", {"event_id": "e8"})
    client.up_for = None  # back
    assert sink.flush() == {"events": 6}
    assert ids(client.tables["events"]) == ["e0", "e1", "e3", "e4", "e5", "e6", "e7", "e8"]
    assert [r.row["event_id"] for r in sink.take_refused()] == ["e2"]
    assert sink.pending == 0
    assert sink.rows_written["events"] == 8
    assert sink.rows_refused["events"] == 1


def test_an_outage_keeps_every_row_and_sets_none_aside() -> None:
    client = RefusingClient(up_for=0)
    sink = BatchingSink(client)
    for row in events(4, {1}):
        sink.add("events", row)
    with pytest.raises(SinkError, match=r"\(4 rows kept\)"):
        sink.flush()
    assert client.calls == [("events", ["e0", "e1", "e2", "e3"])]  # no splitting on an outage
    assert sink.pending == 4
    assert sink.take_refused() == []
    assert client.tables["events"] == []


def test_a_store_refusing_after_a_table_is_written_keeps_counts_right() -> None:
    client = RefusingClient()
    sink = BatchingSink(client)
    sink.add("nope", {"event_id": "x"})  # an unknown table: SinkError, an outage
    sink.add("events", {"event_id": "e0", "bad": True})
    with pytest.raises(SinkError, match="no table nope"):
        sink.flush()
    assert sink.pending == 2  # the later table is not tried
    assert sink.take_refused() == []


def test_memory_client_refuses_a_whole_insert() -> None:
    client = MemoryClient(refuse=refuse_bad)
    with pytest.raises(SinkRefused) as info:
        client.insert("events", [{"event_id": "e0"}, {"event_id": "e1", "bad": True}])
    assert client.tables["events"] == []
    assert info.value.detail == CHDB_69
    assert info.value.column == "amount"


# -- telling a refusal from an outage --------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "refused", "code", "column", "summary"),
    [
        (CHDB_69, True, 69, "amount", "Code 69 (ARGUMENT_OUT_OF_BOUND)"),
        (
            "Code: 27. DB::Exception: Cannot parse input: expected '\"' before: 'abc': (while "
            "reading the value of key ts_ms): (at row 1)\n: While executing "
            "JSONEachRowRowInputFormat. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
            True, 27, "ts_ms", "Code 27 (CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
        ),
        (
            "Code: 60. DB::Exception: Table default.nope does not exist. (UNKNOWN_TABLE)",
            False, None, None, None,
        ),
        (
            "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)",
            False, None, None, None,
        ),
        (
            "Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)",
            False, None, None, None,
        ),
        ("something without a code", False, None, None, None),
    ],
)  # fmt: skip
def test_chdb_errors_are_told_apart(
    message: str, refused: bool, code: int | None, column: str | None, summary: str | None
) -> None:
    error = _insert_error("events", RuntimeError(message))
    assert isinstance(error, SinkError)
    assert isinstance(error, SinkRefused) is refused
    if isinstance(error, SinkRefused):
        assert (error.code, error.column, error.summary, error.detail) == (
            code, column, summary, message
        )  # fmt: skip


def test_columns_named_by_each_store() -> None:
    assert column_named(CHDB_69) == "amount"
    assert (
        column_named(
            "Code: 53. Type mismatch in VALUES section. Repeat query with types_check=True for "
            "detailed info. Column amount_base: argument out of range"
        )
        == "amount_base"
    )
    assert column_named("'NoneType' object has no attribute 'encode'") is None


# -- the dead-letter record of a refused row --------------------------------------------------


def event_row(**fields: Any) -> Row:
    row: Row = {
        "event_id": "e-1",
        "topic": "order-events",
        "type": "order_paid",
        "user_id": "u-1",
        "ts": datetime(2026, 11, 20, 12, 15, tzinfo=UTC),
        "ts_ms": 1_795_176_900_000,
        "received_at": datetime(2026, 11, 20, 12, 15, 1, tzinfo=UTC),
        "room_id": "r-1",
        "session_id": "",
        "group_id": "",
        "order_id": "o-1",
        "amount": Decimal("50000000.00"),
        "currency": "CNY",
        "amount_base": Decimal("50000000.00"),
        "channel": "live",
        "campaign_id": "",
        "trigger_id": "",
        "text": "",
        "seconds": 0.0,
        "props": '{"coupon":"c1","n":[1,2]}',
    }
    row.update(fields)
    return row


def test_a_refused_event_row_becomes_a_dead_letter_with_its_event() -> None:
    refused = RefusedRow(
        "events", event_row(), CHDB_69, "amount", "Code 69 (ARGUMENT_OUT_OF_BOUND)"
    )
    label, key, value = refused_row_letter(refused)
    assert (label, key) == ("order-events", b"u-1")
    body = orjson.loads(value)
    assert body["reason"] == "sink_rejected"
    assert (body["field"], body["detail"], body["table"]) == ("amount", CHDB_69, "events")
    assert body["topic"] == "order-events"
    assert body["row"]["amount"] == "50000000.00"  # Decimals as text
    assert body["row"]["ts"] == "2026-11-20T12:15:00+00:00"  # datetimes as ISO text
    assert body["event"] == {
        "event_id": "e-1",
        "type": "order_paid",
        "user_id": "u-1",
        "ts": 1_795_176_900_000,
        "room_id": "r-1",
        "order_id": "o-1",
        "amount": "50000000.00",
        "currency": "CNY",
        "channel": "live",
        "props": {"coupon": "c1", "n": [1, 2]},
    }
    assert datetime.fromisoformat(body["rejected_at"]).tzinfo is not None


def test_a_refused_row_of_another_table_is_counted_under_its_table() -> None:
    row = {"user_id": "u-2", "monetary": Decimal(10) ** 20, "updated_at": datetime(2026, 1, 1)}
    label, key, value = refused_row_letter(
        RefusedRow("user_scores", row, "out of range", None, "x")
    )
    assert (label, key) == ("user_scores", b"u-2")
    body = orjson.loads(value)
    assert body["topic"] is None
    assert "event" not in body
    assert body["row"] == {
        "user_id": "u-2", "monetary": str(Decimal(10) ** 20), "updated_at": "2026-01-01T00:00:00"
    }  # fmt: skip


def test_a_refused_row_with_values_json_cannot_carry_still_becomes_a_dead_letter() -> None:
    row = event_row(text="bad \udcff", ts_ms=2**70, room_id=None, props="{not json", seconds=12.5)
    row["odd"] = object()
    _, _, value = refused_row_letter(RefusedRow("events", row, "err", None, "TypeError"))
    body = orjson.loads(value)
    assert body["row"]["text"] == "bad \\udcff"
    assert body["row"]["ts_ms"] == str(2**70)
    assert body["row"]["odd"].startswith("<object")
    assert body["event"]["props"] == "{not json"
    assert body["event"]["seconds"] == 12.5
    assert "room_id" not in body["event"]
    assert body["value_b64"] is None  # no original bytes: the row is all that is left
