"""Batching sinks to ClickHouse: a server over the native protocol, embedded chDB, or memory."""

from sinks.base import BatchingSink, ClickHouseClient
from sinks.exceptions import SinkError
from sinks.factory import open_client

__all__ = ["BatchingSink", "ClickHouseClient", "SinkError", "open_client"]
