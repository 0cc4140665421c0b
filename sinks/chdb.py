"""Embedded ClickHouse through chDB; one process owns a data directory."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from sinks.base import ClickHouseClient, Row
from sinks.ddl import create_statements
from sinks.exceptions import SinkError


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot write {type(value).__name__} to chDB")


class ChdbClient(ClickHouseClient):
    """A chDB session on a data directory, created if missing."""

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

    def ensure_schema(self) -> None:
        for statement in create_statements(None):
            self._session.query(statement)

    def insert(self, table: str, rows: list[Row]) -> None:
        # One JSON array for the batch (JSONEachRow reads arrays too): one call into orjson.
        body = orjson.dumps(rows, default=_plain)
        try:
            self._session.query(f"INSERT INTO {table} FORMAT JSONEachRow " + body.decode())
        except Exception as exc:
            raise SinkError(f"chDB insert into {table}: {exc}") from exc

    def query(self, sql: str) -> list[Row]:
        try:
            result = self._session.query(sql, "JSONEachRow")
        except Exception as exc:
            raise SinkError(f"chDB query failed: {exc}") from exc
        raw = result.bytes()
        return [orjson.loads(line) for line in raw.splitlines() if line]

    def close(self) -> None:
        self._session.close()
