"""The scoring engine's erasures: requests read from the erasures topic, applied by the owner
of the person's partition between batches, and announced complete once the checkpoint that
made them durable has completed (`pipeline.erasure` has the records).

What an erasure does in the worker: the user's state leaves memory at once, a tombstone goes
to the changelog (and so the local copy) with the next checkpoint, a tombstone goes to the
scores topic, the sink drops the person's buffered rows and deletes their stored rows in every
table before its next insert. Events of the person recorded on the broker before the request
(a replay after a crash, a backlog not read yet) are dropped when read; later ones start a new
person.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from agents.outputs import ScoringOutputs
from pipeline import metrics
from pipeline.erasure import Erasure, ErasureLog
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.stream.compacted import CompactedView
from sinks.base import BatchingSink

log = logging.getLogger(__name__)


class ErasureRequests(CompactedView):
    """Every erasure's latest record (every worker reads them all, from the beginning)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.erasures_topic)
        self.log = ErasureLog()

    def on_record(self, key: str, value: bytes | None) -> None:
        if value is None:
            return
        try:
            self.log.apply(Erasure.from_bytes(value))
        except ValueError as exc:
            log.error("unreadable record %s in %s: %s", key, self.topic, exc)


class Erasing:
    """One erasure applied here and waiting for a checkpoint."""

    __slots__ = ("erasure", "state_found", "tombstone")

    def __init__(self, erasure: Erasure, state_found: bool) -> None:
        self.erasure = erasure
        self.state_found = state_found
        self.tombstone: asyncio.Future[object] | None = None


class Erasures:
    """Which requests this worker applies, and their completion."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.requests = ErasureRequests(settings)
        self._partitioner = DefaultPartitioner()
        self._numbers = list(range(settings.topic_partitions))
        self._applied: set[str] = set()  # erasure ids applied in this process
        self.waiting: list[Erasing] = []  # applied, for the next checkpoint to complete

    def partition_of(self, user_id: str, known: int | None) -> int:
        """The user's input partition: where its state is, else where the producers'
        default partitioner (murmur2 of the key) puts its events."""
        if known is not None:
            return known
        return int(self._partitioner(user_id.encode(), self._numbers, self._numbers))

    def due(self, owned: set[int], partition_of: Callable[[str], int | None]) -> list[Erasure]:
        """Requests of users on partitions owned here that this process has not applied."""
        out: list[Erasure] = []
        for erasure in self.requests.log.pending():
            user_id = erasure.user_id
            assert user_id is not None
            if erasure.erasure_id in self._applied:
                continue
            if self.partition_of(user_id, partition_of(user_id)) in owned:
                out.append(erasure)
        return out

    async def apply_due(
        self, owned: set[int], scorer: Scorer, sink: BatchingSink, outputs: ScoringOutputs
    ) -> None:
        """Erase the people whose erasure was requested and whose partition is owned here
        (between two batches of the scoring engine)."""
        for erasure in self.due(owned, scorer.store.partition_of):
            user_id = erasure.user_id
            assert user_id is not None
            user = scorer.store.get(user_id)
            if user is not None and user.held_refunds:
                # Refunds held for a payment go with the person: erased events, so the books
                # still balance (they were counted in, and are neither scored nor dead).
                held = sum(len(refunds) for refunds in user.held_refunds.values())
                metrics.ERASED_EVENTS.labels(scorer.settings.topic_order).inc(held)
            found = scorer.erase(user_id)
            sink.erase(user_id)
            item = self.applied(erasure, found)
            item.tombstone = await outputs.erase(user_id)

    def applied(self, erasure: Erasure, state_found: bool) -> Erasing:
        self._applied.add(erasure.erasure_id)
        erasing = Erasing(erasure, state_found)
        self.waiting.append(erasing)
        return erasing

    def erased_before(self, user_id: str, record_ms: int) -> bool:
        return self.requests.log.erased_before(user_id, record_ms)

    async def announce(
        self, done: list[Erasing], sink: BatchingSink, producer: AIOKafkaProducer
    ) -> None:
        """The erasures a completed checkpoint made durable: `complete`, without the user id."""
        for item in done:
            erasure = item.erasure
            assert erasure.user_id is not None
            rows = sink.erased.pop(erasure.user_id, {})
            tombstone = None
            if item.tombstone is not None:
                metadata = await item.tombstone
                tombstone = (int(metadata.partition), int(metadata.offset))  # type: ignore[attr-defined]
            record = erasure.completed(int(time.time() * 1000), item.state_found, rows, tombstone)
            await producer.send_and_wait(
                self.settings.erasures_topic, record.to_bytes(), key=erasure.erasure_id.encode()
            )
            metrics.ERASURES.inc()
            deleted = sum(rows.values())
            log.info("erasure %s complete (%d rows deleted)", erasure.erasure_id, deleted)
