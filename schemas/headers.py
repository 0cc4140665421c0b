"""Kafka record headers of the event contract: backfilled history and its end markers.

- `lifecycle-backfill: <id>` on an event marks it as history loaded by the backfill `<id>`
  (`lifecycle backfill`, or `EventProducer(..., backfill_id=...)`); the event is otherwise an
  ordinary event of its topic.
- `lifecycle-backfill-end: <id>` on a record with a null key and an empty value is not an
  event: the backfill `<id>` sent it on every partition of each input topic after its last
  event, so a consumer can tell when the backfill is finished on each partition.
"""

from __future__ import annotations

from collections.abc import Iterable

BACKFILL_HEADER = "lifecycle-backfill"
BACKFILL_END_HEADER = "lifecycle-backfill-end"

Headers = list[tuple[str, bytes]]


def backfill_headers(backfill_id: str) -> Headers:
    """Headers of an event of the backfill `backfill_id`."""
    return [(BACKFILL_HEADER, backfill_id.encode())]


def end_marker_headers(backfill_id: str) -> Headers:
    """Headers of the end marker of the backfill `backfill_id`."""
    return [(BACKFILL_END_HEADER, backfill_id.encode())]


def is_end_marker(headers: Iterable[tuple[str, bytes]] | None) -> bool:
    """Whether a record with these headers is a backfill's end marker (not an event)."""
    return bool(headers) and any(name == BACKFILL_END_HEADER for name, _ in headers or ())


def is_backfill(headers: Iterable[tuple[str, bytes]] | None) -> bool:
    """Whether a record with these headers is an event of a backfill (history)."""
    return bool(headers) and any(name == BACKFILL_HEADER for name, _ in headers or ())
