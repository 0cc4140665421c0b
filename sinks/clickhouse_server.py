"""A ClickHouse server over the native protocol (clickhouse-driver)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlparse

from sinks.base import ClickHouseClient, Row
from sinks.ddl import create_statements
from sinks.exceptions import SinkError


class ServerClient(ClickHouseClient):
    """Connects to `clickhouse://user:password@host:9000/database`."""

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

    def ensure_schema(self) -> None:
        self._execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        for statement in create_statements(self.database):
            self._execute(statement)

    def insert(self, table: str, rows: list[Row]) -> None:
        columns = list(rows[0])
        self._execute(
            f"INSERT INTO {self.database}.{table} ({', '.join(columns)}) VALUES",
            [tuple(row[c] for c in columns) for row in rows],
        )

    def query(self, sql: str) -> list[Row]:
        rows, columns = self._execute(sql, reader=True, with_column_types=True)
        names = [name for name, _ in columns]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def close(self) -> None:
        self._client.disconnect()
        self._reader.disconnect()
