"""The client contract every store implements, and the batching sink on top of it."""

from __future__ import annotations

import logging
import threading
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

    `add` and `flush` may run on different threads (the worker flushes in a thread): a flush
    takes the buffers in one step, so rows added meanwhile wait for the next one. A failed
    insert puts its rows back in front, so a store that is down for a while loses nothing until
    `max_buffered` rows wait; beyond that `add` raises SinkError so that the caller stops
    consuming instead of dropping rows.
    """

    def __init__(self, client: ClickHouseClient, max_buffered: int = 1_000_000) -> None:
        self.client = client
        self.max_buffered = max_buffered
        self._buffers: dict[str, list[Row]] = defaultdict(list)
        self._pending = 0
        self._lock = threading.Lock()  # guards the buffers
        self._flushing = threading.Lock()  # one flush at a time, so batches keep their order
        self.rows_written: dict[str, int] = defaultdict(int)
        self.failed_flushes = 0

    @property
    def pending(self) -> int:
        return self._pending

    def add(self, table: str, row: Row) -> None:
        self.add_many([(table, row)])

    def add_many(self, rows: list[tuple[str, Row]]) -> None:
        """(table, row) pairs, all or none; raises SinkError when the backlog is full."""
        if not rows:
            return
        with self._lock:
            if self._pending >= self.max_buffered:
                raise SinkError(
                    f"sink backlog of {self._pending} rows: the store is not taking writes"
                )
            buffers = self._buffers
            for table, row in rows:
                buffers[table].append(row)
            self._pending += len(rows)

    def flush(self) -> dict[str, int]:
        """Write every buffered batch; returns rows written per table, raises SinkError."""
        written: dict[str, int] = {}
        with self._flushing:
            with self._lock:
                taken, self._buffers = self._buffers, defaultdict(list)
            failure: Exception | None = None
            for table, batch in taken.items():
                if not batch:
                    continue
                if failure is None:
                    try:
                        self.client.insert(table, batch)
                    except Exception as exc:
                        failure = SinkError(
                            f"insert into {table} failed ({len(batch)} rows kept): {exc}"
                        )
                        failure.__cause__ = exc
                    else:
                        written[table] = len(batch)
                        self.rows_written[table] += len(batch)
                        continue
                with self._lock:
                    self._buffers[table][:0] = batch
            with self._lock:
                self._pending -= sum(written.values())
            if failure is not None:
                self.failed_flushes += 1
                raise failure
        return written
