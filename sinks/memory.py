"""An in-memory store for unit tests of code that writes rows; no SQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from sinks.base import ClickHouseClient, Row
from sinks.ddl import TABLES, about_person
from sinks.exceptions import SinkError, SinkRefused

# Given a table and a row, the store's error for a row it refuses, or None.
Refusal = Callable[[str, Row], str | None]


class MemoryClient(ClickHouseClient):
    """Keeps inserted rows per table; `query` understands only `SELECT * FROM table`.

    `refuse`, when given, says which rows the store refuses: an insert containing one raises
    SinkRefused with its message and writes nothing, as a real store does. An unknown table
    raises SinkError.
    """

    def __init__(self, refuse: Refusal | None = None) -> None:
        self.tables: dict[str, list[Row]] = defaultdict(list)
        self.refuse = refuse

    def ensure_schema(self, retention_days: int | None = None) -> None:
        for name in TABLES:
            self.tables.setdefault(name, [])

    def insert(self, table: str, rows: list[Row]) -> None:
        if table not in TABLES:
            raise SinkError(f"no table {table}")
        if self.refuse is not None:
            for row in rows:
                error = self.refuse(table, row)
                if error is not None:
                    raise SinkRefused(
                        f"memory store refused a row of {table}: {error}", error, error
                    )
        self.tables[table].extend(dict(row) for row in rows)

    def query(self, sql: str) -> list[Row]:
        words = sql.split()
        if len(words) != 4 or [w.upper() for w in words[:3]] != ["SELECT", "*", "FROM"]:
            raise SinkError("the memory store answers only `SELECT * FROM table`")
        return list(self.tables[words[3]])

    def erase_users(self, user_ids: list[str], timeout_s: float = 60.0) -> dict[str, int]:
        ids = set(user_ids)
        deleted = {}
        for table, rows in self.tables.items():
            kept = [row for row in rows if not about_person(table, row, ids)]
            deleted[table] = len(rows) - len(kept)
            rows[:] = kept
        return deleted

    def close(self) -> None:
        self.tables.clear()
