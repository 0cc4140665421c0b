"""The client contract every store implements, and the batching sink on top of it."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import defaultdict
from typing import Any

from sinks.exceptions import SinkError

log = logging.getLogger(__name__)

Row = dict[str, Any]


class ClickHouseClient(ABC):
    """A connection to one ClickHouse database (server, chDB or memory)."""

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the product's tables if they are missing."""

    @abstractmethod
    def insert(self, table: str, rows: list[Row]) -> None:
        """Write rows (dicts keyed by column) to a table, all or nothing."""

    @abstractmethod
    def query(self, sql: str) -> list[Row]:
        """Run a SELECT and return its rows as dicts."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (and chDB's directory lock)."""


class BatchingSink:
    """Buffers rows per table; `flush()` writes each table's batch in one insert.

    A failed insert keeps its rows for the next flush, so a store that is down for a while
    loses nothing until `max_buffered` rows wait; beyond that `add` raises SinkError so that
    the caller stops consuming instead of dropping rows.
    """

    def __init__(self, client: ClickHouseClient, max_buffered: int = 1_000_000) -> None:
        self.client = client
        self.max_buffered = max_buffered
        self._buffers: dict[str, list[Row]] = defaultdict(list)
        self._pending = 0
        self.rows_written: dict[str, int] = defaultdict(int)
        self.failed_flushes = 0

    @property
    def pending(self) -> int:
        return self._pending

    def add(self, table: str, row: Row) -> None:
        if self._pending >= self.max_buffered:
            raise SinkError(f"sink backlog of {self._pending} rows: the store is not taking writes")
        self._buffers[table].append(row)
        self._pending += 1

    def flush(self) -> dict[str, int]:
        """Write every buffered batch; returns rows written per table, raises SinkError."""
        written: dict[str, int] = {}
        for table in list(self._buffers):
            batch = self._buffers[table]
            if not batch:
                continue
            try:
                self.client.insert(table, batch)
            except Exception as exc:
                self.failed_flushes += 1
                raise SinkError(
                    f"insert into {table} failed ({len(batch)} rows kept): {exc}"
                ) from exc
            self._buffers[table] = []
            self._pending -= len(batch)
            self.rows_written[table] += len(batch)
            written[table] = len(batch)
        return written
