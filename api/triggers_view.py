"""The trigger feed: every fired trigger, read from `lifecycle-triggers`, paged by cursor.

A cursor is the next offset to read of every partition of the topic, so it stays valid across
restarts of the service and never skips a trigger that arrives late on a slower partition.
Within what is loaded, a page is oldest first by the time each trigger was published.

After a worker crash a trigger can be published again: the feed keeps the first record of a
trigger id and drops a later record of the same (subject, rule) inside the rule's cooldown.
A subject's triggers are all on one partition, so which records are kept depends only on the
topic's contents: every replica of the service, and every restart, serves the same feed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import heapq
import logging
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from api.erasures_view import ErasuresView
from pipeline.domain.triggers import RuleSet
from pipeline.erasure import Erasure, ErasureLog
from pipeline.settings import Settings

log = logging.getLogger(__name__)


class BadCursor(ValueError):
    """A cursor this service did not hand out."""


@dataclass(frozen=True, slots=True)
class Entry:
    offset: int
    published_ms: int
    rule: str
    value: bytes
    user_id: str | None  # the subject, when it is a user


def encode_cursor(positions: dict[int, int]) -> str:
    text = ".".join(f"{p}-{o}" for p, o in sorted(positions.items()))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[int, int]:
    if not cursor:
        return {}
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        positions = {}
        for part in text.split("."):
            partition, offset = part.split("-")
            positions[int(partition)] = int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor(f"cursor {cursor!r} is not one this service handed out") from exc
    if any(p < 0 or o < 0 for p, o in positions.items()):
        raise BadCursor(f"cursor {cursor!r} is not one this service handed out")
    return positions


class TriggersView:
    """Reads every partition of the triggers topic from the beginning and keeps reading."""

    def __init__(
        self, settings: Settings, rules: RuleSet, erasures: ErasuresView | None = None
    ) -> None:
        self.settings = settings
        self.topic = settings.topic_triggers
        self.cooldown_ms = {rule.name: rule.cooldown_ms for rule in rules.rules}
        self.logs: dict[int, list[Entry]] = {}
        self.read_to: dict[int, int] = {}
        self.ids: set[str] = set()
        self.last_at: dict[tuple[str, str], int] = {}
        self.dropped = 0
        # Erased people: their triggers published before the request are not served (the
        # feed loads once the erasures view has, and hears of each erasure after).
        self._erasures_view = erasures
        self.erasures = erasures.log if erasures is not None else ErasureLog()
        if erasures is not None:
            erasures.listeners.append(self.erased)
        self.ready = False
        self.changed = asyncio.Event()  # set (and replaced) whenever triggers were added
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="triggers-view")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def add(self, partition: int, offset: int, published_ms: int, value: bytes | None) -> bool:
        """Keep one record of the topic; false when it is dropped (unreadable or repeated)."""
        self.read_to[partition] = offset + 1
        try:
            data = orjson.loads(value or b"")
            trigger_id, rule = str(data["id"]), str(data["rule"])
            subject, at_ms = str(data["subject_id"]), int(data["at_ms"])
            user_id = subject if data.get("subject_type", "user") == "user" else None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("unreadable trigger record at %s[%d]@%d", self.topic, partition, offset)
            self.dropped += 1
            return False
        if user_id is not None and self.erasures.erased_before(user_id, published_ms):
            return False
        last = self.last_at.get((subject, rule))
        cooldown = self.cooldown_ms.get(rule, 0)
        if trigger_id in self.ids or (last is not None and abs(at_ms - last) < cooldown):
            self.dropped += 1
            return False
        self.ids.add(trigger_id)
        self.last_at[(subject, rule)] = at_ms
        entry = Entry(offset, published_ms, rule, value or b"", user_id)
        self.logs.setdefault(partition, []).append(entry)
        return True

    def erased(self, erasure: Erasure) -> None:
        """A person's erasure was requested: their triggers published before it leave the
        feed (the erasures view calls this for every record; a request names the user)."""
        user_id = erasure.user_id
        if user_id is None:
            return
        for partition, entries in self.logs.items():
            kept = [
                e for e in entries
                if e.user_id != user_id or e.published_ms >= erasure.requested_ms
            ]  # fmt: skip
            if len(kept) != len(entries):
                self.logs[partition] = kept
        for key in [k for k in self.last_at if k[0] == user_id]:
            del self.last_at[key]

    def page(
        self, cursor: dict[int, int], rule: str | None, limit: int
    ) -> tuple[list[tuple[bytes, dict[int, int]]], dict[int, int]]:
        """Up to `limit` triggers after the cursor, oldest first, each with the cursor that
        continues after it, and the cursor that continues after the page (entries of other
        rules are passed over, and the cursor with them)."""
        positions = {p: cursor.get(p, 0) for p in self.read_to} | cursor
        heap: list[tuple[int, int, int]] = []  # (published, partition, index)
        for partition, entries in self.logs.items():
            start = _first_at_or_after(entries, positions[partition])
            if start < len(entries):
                heap.append((entries[start].published_ms, partition, start))
        heapq.heapify(heap)
        items: list[tuple[bytes, dict[int, int]]] = []
        while heap and len(items) < limit:
            _, partition, index = heapq.heappop(heap)
            entries = self.logs[partition]
            entry = entries[index]
            positions[partition] = entry.offset + 1
            if index + 1 < len(entries):
                heapq.heappush(heap, (entries[index + 1].published_ms, partition, index + 1))
            if rule is None or entry.rule == rule:
                items.append((entry.value, dict(positions)))
        if not heap:
            # Everything loaded was passed: continue after what was read, kept or not.
            for partition, read_to in self.read_to.items():
                positions[partition] = max(positions[partition], read_to)
        return items, positions

    async def _run(self) -> None:
        if self._erasures_view is not None:  # erased people's triggers are never loaded
            await self._erasures_view.loaded.wait()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=20,
        )
        self._consumer = consumer
        await consumer.start()
        while True:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                break
            log.warning("topic %s not found yet; retrying", self.topic)
            await asyncio.sleep(1.0)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        targets = dict(await consumer.end_offsets(tps))
        for tp in tps:
            self.read_to.setdefault(tp.partition, 0)
        while True:
            if not self.ready:
                positions = [await consumer.position(tp) for tp in targets]
                self.ready = all(
                    p >= end for p, end in zip(positions, targets.values(), strict=True)
                )
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            added = False
            for tp, records in batches.items():
                for record in records:
                    added |= self.add(tp.partition, record.offset, record.timestamp, record.value)
            if added or batches:
                self.changed.set()
                self.changed = asyncio.Event()


def _first_at_or_after(entries: list[Entry], offset: int) -> int:
    lo, hi = 0, len(entries)
    while lo < hi:
        mid = (lo + hi) // 2
        if entries[mid].offset < offset:
            lo = mid + 1
        else:
            hi = mid
    return lo
