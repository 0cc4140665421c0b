"""Rows ClickHouse refused, to dead-letters before any offset is committed past them.

The scoring and room engines share one sink; either may take rows the other's events made.
Each engine dead-letters the refused rows after its flush and before it commits; a lock per
sink makes an engine also wait for the rows the other one took and is still sending, so no
offset is committed while a refused row is neither written nor in dead-letters.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from weakref import WeakKeyDictionary

from aiokafka import AIOKafkaProducer

from pipeline import metrics
from pipeline.dead_letters import refused_row_letter
from sinks.base import BatchingSink

log = logging.getLogger(__name__)

_locks: WeakKeyDictionary[BatchingSink, asyncio.Lock] = WeakKeyDictionary()


async def dead_letter_refused(sink: BatchingSink, producer: AIOKafkaProducer, topic: str) -> int:
    """Send each row the sink's store refused to `topic` (the dead-letters topic), count and
    log it, and wait until the broker has them all; returns how many. A failed send raises
    (the caller commits nothing then)."""
    lock = _locks.setdefault(sink, asyncio.Lock())
    async with lock:
        refused = sink.take_refused()
        if not refused:
            return 0
        sends: list[asyncio.Future[Any]] = []
        for item in refused:
            _, key, value = refused_row_letter(item)
            metrics.SINK_REJECTED_ROWS.labels(item.table).inc()
            row = item.row
            event = row.get("event_id") or row.get("id")
            # The event id finds the dead letter; the user is personal data: DEBUG only.
            log.warning(
                "ClickHouse refused a row of %s (event %s, column %s): %s; it goes to %s",
                item.table, event, item.column, item.summary, topic,
            )  # fmt: skip
            log.debug("the refused row of event %s is of user %s", event,
                      row.get("user_id") or row.get("subject_id"))  # fmt: skip
            sends.append(await producer.send(topic, key=key, value=value))
        await producer.flush()
        await asyncio.gather(*sends)
        return len(refused)
