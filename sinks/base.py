"""The client contract every store implements, and the batching sink on top of it."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from sinks.ddl import PERSON_COLUMNS, about_person, person_condition
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
    def ensure_schema(self, retention_days: int | None = None) -> None:
        """Apply the schema migrations not applied yet (`sinks.migrations`); with
        `retention_days`, keep raw events that many days (0: forever) where the store has TTL."""

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

    def execute(self, statement: str) -> None:
        """Run a statement that answers no rows (DDL, mutations); raises SinkError."""
        raise NotImplementedError

    def delete_where(self, table: str, condition: str) -> None:
        """Delete the table's rows that meet `condition` (a mutation: `ALTER TABLE ...
        DELETE`, which every supported ClickHouse has); may return before they are gone."""
        raise NotImplementedError

    def erase_users(self, user_ids: list[str], timeout_s: float = 60.0) -> dict[str, int]:
        """Delete every row about the users in every table and wait until none is left;
        returns the rows deleted per table. Raises SinkError when the store fails or rows
        are still there after `timeout_s`."""
        deleted: dict[str, int] = {}
        for table in PERSON_COLUMNS:
            condition = person_condition(table, user_ids)
            count = f"SELECT count() AS n FROM {table} WHERE {condition}"
            found = int(self.query(count)[0]["n"])
            deleted[table] = found
            if not found:
                continue
            self.delete_where(table, condition)
            deadline = time.monotonic() + timeout_s
            while int(self.query(count)[0]["n"]):
                if time.monotonic() > deadline:
                    raise SinkError(f"rows of an erased person still in {table} ({timeout_s} s)")
                time.sleep(0.05)  # the mutation runs in the store's background pool
        return deleted


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

    `erase(user_id)` drops the person's buffered rows at once and deletes their stored rows at
    the start of the next flush, before that flush's inserts: the rows written before are
    gone, and rows added after the erasure (a new person with the same id) are kept.
    """

    def __init__(self, client: ClickHouseClient, max_buffered: int = 1_000_000) -> None:
        self.client = client
        self.max_buffered = max_buffered
        self._buffers: dict[str, list[Row]] = defaultdict(list)
        self._pending = 0
        self._refused: list[RefusedRow] = []
        self._erasing: list[str] = []  # users whose stored rows the next flush deletes
        self.erased: dict[str, dict[str, int]] = {}  # rows deleted per table, by user
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

    def erase(self, user_id: str) -> None:
        """Forget the person's buffered rows now; delete their stored rows with the next flush
        (`erased[user_id]` then has the rows deleted per table)."""
        ids = {user_id}
        with self._lock:
            for table, rows in self._buffers.items():
                kept = [row for row in rows if not about_person(table, row, ids)]
                self._pending -= len(rows) - len(kept)
                rows[:] = kept
            self._refused = [r for r in self._refused if not about_person(r.table, r.row, ids)]
            self._erasing.append(user_id)

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
                erasing, self._erasing = self._erasing, []
            failure: Exception | None = None
            for done, user_id in enumerate(erasing):
                try:
                    self.erased[user_id] = self.client.erase_users([user_id])
                except Exception as exc:
                    failure = SinkError(f"erasure of a person's rows failed: {exc}")
                    failure.__cause__ = exc
                    with self._lock:
                        self._erasing[:0] = erasing[done:]
                    break
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
