"""BatchingSink over the in-memory client: batching per table, retries, backlog limit."""

from __future__ import annotations

import pytest

from sinks.base import BatchingSink, ClickHouseClient, Row
from sinks.ddl import TABLES
from sinks.exceptions import SinkError
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
