"""Open the store named by CLICKHOUSE_URL."""

from __future__ import annotations

from urllib.parse import urlparse

from pipeline.settings import Settings
from sinks.base import ClickHouseClient


def open_client(settings: Settings) -> ClickHouseClient:
    """chdb:///path, clickhouse://host:9000/db or memory:// (tests)."""
    scheme = urlparse(settings.clickhouse_url).scheme
    if scheme == "chdb":
        from sinks.chdb import ChdbClient

        return ChdbClient(settings.chdb_path())
    if scheme == "clickhouse":
        from sinks.clickhouse_server import ServerClient

        return ServerClient(settings.clickhouse_url)
    from sinks.memory import MemoryClient

    return MemoryClient()
