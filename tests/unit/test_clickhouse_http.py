"""The read-only rule of the worker's ClickHouse HTTP interface (`prepare`); the fresh clone
found `INTO OUTFILE` and `file()` getting through a first-word check."""

from __future__ import annotations

import pytest

from agents.clickhouse_http import Refused, prepare


@pytest.mark.parametrize(
    ("sql", "statement", "fmt"),
    [("SELECT 1", "SELECT * FROM (SELECT 1) SETTINGS readonly = 1", "TabSeparated"),
     ("  select count() FROM events;", "SELECT * FROM (select count() FROM events) "
      "SETTINGS readonly = 1", "TabSeparated"),
     ("WITH 1 AS x SELECT x FORMAT JSONEachRow", "SELECT * FROM (WITH 1 AS x SELECT x) "
      "SETTINGS readonly = 1", "JSONEachRow"),
     ("-- a comment\nSELECT ';' AS s", "SELECT * FROM (SELECT ';' AS s) SETTINGS readonly = 1",
      "TabSeparated"),
     ("/* hi */ SHOW TABLES", "SHOW TABLES", "TabSeparated"),
     ("DESCRIBE events", "DESCRIBE events", "TabSeparated"),
     ("EXISTS TABLE default.events FORMAT CSV", "EXISTS TABLE default.events", "CSV")],
)  # fmt: skip
def test_reads_run_read_only(sql: str, statement: str, fmt: str) -> None:
    assert prepare(sql, "TabSeparated") == (statement, fmt)


@pytest.mark.parametrize(
    ("sql", "why"),
    [("DROP TABLE events", "read-only"), ("INSERT INTO events VALUES", "read-only"),
     ("ALTER TABLE events DELETE WHERE 1", "read-only"), ("", "empty"),
     ("SELECT 1; DROP TABLE events", "one statement"),
     ("/* SELECT */ TRUNCATE TABLE events", "read-only"),
     ("DESCRIBE TABLE file('/etc/passwd')", "read-only"),
     ("EXPLAIN SELECT 1", "read-only"), ("SET readonly = 0", "read-only")],
)  # fmt: skip
def test_anything_else_is_refused(sql: str, why: str) -> None:
    with pytest.raises(Refused, match=why):
        prepare(sql, "TabSeparated")
