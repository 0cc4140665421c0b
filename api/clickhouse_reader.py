"""How the API reads ClickHouse: a server directly (clickhouse-driver), the embedded chDB
through the worker's ClickHouse HTTP interface (no other process may open chDB's files)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from pipeline.settings import Settings
from sinks.clickhouse_server import ServerClient
from sinks.exceptions import SinkError


class HttpReader:
    """Queries over ClickHouse's HTTP interface, rows as dicts (JSONEachRow)."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout_s)

    def query(self, sql: str) -> list[dict[str, Any]]:
        try:
            answer = self._client.post(
                self.url, params={"default_format": "JSONEachRow"}, content=sql.encode()
            )
        except httpx.HTTPError as exc:
            raise SinkError(f"ClickHouse at {self.url} did not answer: {exc}") from exc
        if answer.status_code != 200:
            raise SinkError(f"ClickHouse at {self.url}: {answer.text.strip()}")
        return [orjson.loads(line) for line in answer.content.splitlines() if line]

    def close(self) -> None:
        self._client.close()


def open_reader(settings: Settings) -> HttpReader | ServerClient | None:
    """The reader for the configured store (None for one the API cannot read: memory)."""
    url = settings.clickhouse_url
    if url.startswith("chdb:"):
        return HttpReader(f"http://{settings.api_host}:{settings.clickhouse_http_port}/")
    if url.startswith("clickhouse:"):
        return ServerClient(url)
    return None
