"""Embedded ClickHouse through chDB; one process owns a data directory."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from sinks.base import ClickHouseClient, Row
from sinks.exceptions import REFUSAL_CODES, SinkError, SinkRefused
from sinks.migrations import migrate, retention_statement

# chDB's messages: "Code: 69. DB::Exception: ...: (at row 1)\n: While executing ....
# (ARGUMENT_OUT_OF_BOUND)".
_CODE = re.compile(r"Code: (\d+)\.")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, Decimal):  # as text: a float would round amounts of 16+ digits
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to chDB")


def _insert_error(table: str, exc: Exception) -> SinkError:
    """SinkRefused when chDB's error code is about the data, SinkError otherwise."""
    message = str(exc)
    code_match = _CODE.search(message)
    code = int(code_match.group(1)) if code_match else None
    if code is None or code not in REFUSAL_CODES:
        return SinkError(f"chDB insert into {table}: {message}")
    name = _NAME.search(message)
    summary = f"Code {code}" + (f" ({name.group(1)})" if name else "")
    return SinkRefused(f"chDB refused rows of {table}: {message}", message, summary, code)


class ChdbClient(ClickHouseClient):
    """A chDB session on a data directory, created if missing.

    `insert` raises SinkRefused when chDB refuses the data (its error code is one of
    REFUSAL_CODES, or a value cannot be encoded as JSON), SinkError for anything else.
    """

    def __init__(self, path: Path) -> None:
        from chdb import session  # heavy import, only where chDB is used

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._session = session.Session(str(path))
        except Exception as exc:
            raise SinkError(
                f"cannot open chDB at {path}: {exc} (is another process using this directory?)"
            ) from exc

    def ensure_schema(self, retention_days: int | None = None) -> None:
        migrate(self.execute, self.query, None)
        if retention_days is not None:
            self.execute(retention_statement(None, retention_days))

    def execute(self, statement: str) -> None:
        try:
            self._session.query(statement)
        except Exception as exc:
            raise SinkError(f"chDB: {exc}") from exc

    def insert(self, table: str, rows: list[Row]) -> None:
        # One JSON array for the batch (JSONEachRow reads arrays too): one call into orjson.
        try:
            body = orjson.dumps(rows, default=_plain)
        except TypeError as exc:  # orjson.JSONEncodeError too: a value JSON cannot carry
            summary = type(exc).__name__
            raise SinkRefused(f"cannot encode rows of {table}: {exc}", str(exc), summary) from exc
        try:
            self._session.query(f"INSERT INTO {table} FORMAT JSONEachRow " + body.decode())
        except Exception as exc:
            raise _insert_error(table, exc) from exc

    def query(self, sql: str) -> list[Row]:
        try:
            result = self._session.query(sql, "JSONEachRow")
        except Exception as exc:
            raise SinkError(f"chDB query failed: {exc}") from exc
        raw = result.bytes()
        return [orjson.loads(line) for line in raw.splitlines() if line]

    def delete_where(self, table: str, condition: str) -> None:
        try:
            self._session.query(
                f"ALTER TABLE {table} DELETE WHERE {condition} SETTINGS mutations_sync = 1"
            )
        except Exception as exc:
            raise SinkError(f"chDB delete from {table} failed: {exc}") from exc

    def query_raw(self, sql: str, fmt: str) -> bytes:
        """Run a query and return its result as chDB writes it in `fmt` (a `FORMAT` clause
        in the query wins); raises SinkError with chDB's message."""
        try:
            return bytes(self._session.query(sql, fmt).bytes())
        except Exception as exc:
            raise SinkError(f"{exc}") from exc

    def close(self) -> None:
        self._session.close()
