"""An in-memory store for unit tests of code that writes rows; no SQL."""

from __future__ import annotations

from collections import defaultdict

from sinks.base import ClickHouseClient, Row
from sinks.ddl import TABLES
from sinks.exceptions import SinkError


class MemoryClient(ClickHouseClient):
    """Keeps inserted rows per table; `query` understands only `SELECT * FROM table`."""

    def __init__(self) -> None:
        self.tables: dict[str, list[Row]] = defaultdict(list)

    def ensure_schema(self) -> None:
        for name in TABLES:
            self.tables.setdefault(name, [])

    def insert(self, table: str, rows: list[Row]) -> None:
        if table not in TABLES:
            raise SinkError(f"no table {table}")
        self.tables[table].extend(dict(row) for row in rows)

    def query(self, sql: str) -> list[Row]:
        words = sql.split()
        if len(words) != 4 or [w.upper() for w in words[:3]] != ["SELECT", "*", "FROM"]:
            raise SinkError("the memory store answers only `SELECT * FROM table`")
        return list(self.tables[words[3]])

    def close(self) -> None:
        self.tables.clear()
