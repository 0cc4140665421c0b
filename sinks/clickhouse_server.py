"""A ClickHouse server over the native protocol (clickhouse-driver)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlparse

from sinks.base import ClickHouseClient, Row
from sinks.exceptions import ENCODING_ERRORS, REFUSAL_CODES, SinkError, SinkRefused
from sinks.migrations import has_ttl, migrate, retention_statement

log = logging.getLogger(__name__)


class ServerClient(ClickHouseClient):
    """Connects to `clickhouse://user:password@host:9000/database`.

    `insert` raises SinkRefused when the server or clickhouse-driver refuses the data (an
    error code of REFUSAL_CODES, such as the driver's own code 53 for a value out of a
    column's range, or a Python error while the driver encodes a value, such as None in a
    String column), SinkError for anything else (network, timeouts, the server's limits).
    """

    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        from clickhouse_driver import Client

        parsed = urlparse(url)
        self.database = (parsed.path or "/default").lstrip("/") or "default"
        connect = {
            "host": parsed.hostname or "127.0.0.1",
            "port": parsed.port or 9000,
            "user": unquote(parsed.username or "default"),
            "password": unquote(parsed.password or ""),
            "connect_timeout": connect_timeout,
            "settings": {"use_numpy": False},
        }
        # Writes name the database (it may not exist yet when this connects); queries, like
        # a dashboard's, name bare tables of it.
        self._client = Client(database="default", **connect)
        self._reader = Client(database=self.database, **connect)

    def _execute(self, sql: str, params: Any = None, reader: bool = False, **kwargs: Any) -> Any:
        try:
            client = self._reader if reader else self._client
            return client.execute(sql, params, **kwargs)
        except Exception as exc:
            raise SinkError(f"ClickHouse server: {exc}") from exc

    def ensure_schema(self, retention_days: int | None = None) -> None:
        self._execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        migrate(self.execute, self.query, self.database)
        if retention_days is None:
            return
        version = str(self._execute("SELECT version()")[0][0])
        if has_ttl(version):
            self.execute(retention_statement(self.database, retention_days))
        else:
            log.warning("ClickHouse %s has no TTL: raw events are kept whatever "
                        "RAW_EVENT_RETENTION_DAYS says", version)  # fmt: skip

    def execute(self, statement: str) -> None:
        self._execute(statement)

    def insert(self, table: str, rows: list[Row]) -> None:
        from clickhouse_driver.errors import Error as DriverError

        columns = list(rows[0])
        try:
            values = [tuple(row[c] for c in columns) for row in rows]
            # The driver disconnects on any error, so the server drops the insert whole.
            self._client.execute(
                f"INSERT INTO {self.database}.{table} ({', '.join(columns)}) VALUES", values
            )
        except DriverError as exc:
            code = exc.code
            if code not in REFUSAL_CODES:
                raise SinkError(f"ClickHouse server: {exc}") from exc
            summary = f"{type(exc).__name__} (code {code})"
            raise SinkRefused(
                f"ClickHouse server refused rows of {table}: {exc}", str(exc), summary, code
            ) from exc
        except ENCODING_ERRORS as exc:
            summary = type(exc).__name__
            raise SinkRefused(
                f"cannot encode rows of {table}: {type(exc).__name__}: {exc}", str(exc), summary
            ) from exc
        except Exception as exc:
            raise SinkError(f"ClickHouse server: {exc}") from exc

    def delete_where(self, table: str, condition: str) -> None:
        # 18.16 has no mutations_sync: the caller waits for the rows to be gone.
        self._execute(f"ALTER TABLE {self.database}.{table} DELETE WHERE {condition}")

    def query(self, sql: str) -> list[Row]:
        rows, columns = self._execute(sql, reader=True, with_column_types=True)
        names = [name for name, _ in columns]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def close(self) -> None:
        self._client.disconnect()
        self._reader.disconnect()
