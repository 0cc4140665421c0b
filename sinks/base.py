"""The client contract every store implements, and the batching sink on top of it."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from sinks.exceptions import SinkError, SinkRefused

log = logging.getLogger(__name__)

Row = dict[str, Any]


@dataclass(frozen=True)
class RefusedRow:
    """A row the store refused: `error` is the store's message, `column` the column it names
    (None when it names none), `summary` a short form of the error without the data."""

    table: str
    row: Row
    error: str
    column: str | None
    summary: str


class ClickHouseClient(ABC):
    """A connection to one ClickHouse database (server, chDB or memory)."""

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create the product's tables if they are missing."""

    @abstractmethod
    def insert(self, table: str, rows: list[Row]) -> None:
        """Write rows (dicts keyed by column) to a table, all or nothing. Raises SinkRefused
        when the store refuses their data (the same rows fail again), SinkError otherwise."""

    @abstractmethod
    def query(self, sql: str) -> list[Row]:
        """Run a SELECT and return its rows as dicts."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (and chDB's directory lock)."""


class BatchingSink:
    """Buffers rows per table; `flush()` writes each table's batch in one insert.

    `add` and `flush` may run on different threads (the worker flushes in a thread): a flush
    takes the buffers in one step, so rows added meanwhile wait for the next one.

    A batch the store refuses (SinkRefused: a value it cannot hold) is split in halves until
    the rows it refuses are alone: the other rows are written, and each refused row is set
    aside, with the store's error, for the caller to take with `take_refused()` (and
    dead-letter); one bad row never blocks the others. Any other failure is an outage: the rows
    not written yet go back in front, in order, and `flush` raises SinkError, so a store that is
    down for a while loses nothing until `max_buffered` rows wait; beyond that `add` raises
    SinkError so that the caller stops consuming instead of dropping rows.
    """

    def __init__(self, client: ClickHouseClient, max_buffered: int = 1_000_000) -> None:
        self.client = client
        self.max_buffered = max_buffered
        self._buffers: dict[str, list[Row]] = defaultdict(list)
        self._pending = 0
        self._refused: list[RefusedRow] = []
        self._lock = threading.Lock()  # guards the buffers and the refused rows
        self._flushing = threading.Lock()  # one flush at a time, so batches keep their order
        self.rows_written: dict[str, int] = defaultdict(int)
        self.rows_refused: dict[str, int] = defaultdict(int)
        self.failed_flushes = 0

    @property
    def pending(self) -> int:
        """Rows buffered and not yet written (refused rows are not pending)."""
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

    def take_refused(self) -> list[RefusedRow]:
        """The rows the store refused since the last call (each table's in the order they
        were added); they are no longer pending, and no flush tries them again."""
        with self._lock:
            refused, self._refused = self._refused, []
        return refused

    def flush(self) -> dict[str, int]:
        """Write every buffered batch; returns rows written per table (refused rows are not
        in it: see `take_refused`). Raises SinkError on an outage, after the tables before
        the failing one are written and with the rest kept."""
        written: dict[str, int] = {}
        with self._flushing:
            with self._lock:
                taken, self._buffers = self._buffers, defaultdict(list)
            failure: Exception | None = None
            for table, batch in taken.items():
                if not batch:
                    continue
                if failure is None:
                    count, refused, kept, failure = self._write(table, batch)
                    written[table] = count
                    self.rows_written[table] += count
                    self.rows_refused[table] += len(refused)
                    with self._lock:
                        self._refused.extend(refused)
                        self._pending -= count + len(refused)
                    batch = kept
                with self._lock:
                    self._buffers[table][:0] = batch
            if failure is not None:
                self.failed_flushes += 1
                raise failure
        return {table: count for table, count in written.items() if count}

    def _write(
        self, table: str, batch: list[Row]
    ) -> tuple[int, list[RefusedRow], list[Row], SinkError | None]:
        """Insert `batch`, splitting refused parts in halves; returns the rows written, the
        rows refused, and on an outage the rows not written (in order) and the error."""
        written = 0
        refused: list[RefusedRow] = []
        parts = deque([batch])  # left to right
        while parts:
            part = parts.popleft()
            try:
                self.client.insert(table, part)
            except SinkRefused as exc:
                if len(part) == 1:
                    refused.append(RefusedRow(table, part[0], exc.detail, exc.column, exc.summary))
                    continue
                middle = len(part) // 2
                parts.extendleft((part[middle:], part[:middle]))
            except Exception as exc:
                kept = [row for rest in (part, *parts) for row in rest]
                failure = SinkError(f"insert into {table} failed ({len(kept)} rows kept): {exc}")
                failure.__cause__ = exc
                return written, refused, kept, failure
            else:
                written += len(part)
        return written, refused, [], None
