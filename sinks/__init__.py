"""Batching sinks to ClickHouse: a server over the native protocol, embedded chDB, or memory."""

from sinks.base import BatchingSink, ClickHouseClient, RefusedRow
from sinks.exceptions import SinkError, SinkRefused
from sinks.factory import open_client

__all__ = [
    "BatchingSink",
    "ClickHouseClient",
    "RefusedRow",
    "SinkError",
    "SinkRefused",
    "open_client",
]
