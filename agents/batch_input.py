"""A batch of input records as the scoring engine applies it: validated events by owned
partition in event-time order, bad records sent to dead-letters, a backfill's end markers
noted, events of erased people dropped, and the records counted as read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from aiokafka.structs import TopicPartition

from agents.erasures import Erasures
from agents.outputs import ScoringOutputs
from agents.partitions import OwnedPartition
from pipeline import metrics
from pipeline.outcome import Prepared
from pipeline.scorer import Scorer
from schemas.headers import is_backfill, is_end_marker

# (event time ms, position in the batch, topic partition, record, the validated event, backfill)
Entry = tuple[int, int, TopicPartition, Any, Prepared, bool]


class PartitionBatch(NamedTuple):
    """One owned partition's part of a batch: its events in event-time order (ties in the
    order read), and the topics whose backfill ended (their end marker came after their
    events)."""

    partition: int
    entries: list[Entry]
    ended: list[str]


def _by_event_time(entry: Entry) -> tuple[int, int]:
    return entry[0], entry[1]


async def prepare_batch(
    batches: Mapping[TopicPartition, list[Any]],
    owned: Mapping[int, OwnedPartition],
    scorer: Scorer,
    erasures: Erasures,
    outputs: ScoringOutputs,
    now: datetime,
) -> list[PartitionBatch]:
    """The batch's valid events by owned partition; a record that fails validation goes to
    dead-letters (`outputs.reject`) with its reason. Records of partitions not owned are
    skipped (and not counted as read)."""
    by_partition: dict[int, tuple[list[Entry], list[str]]] = {}
    seen: Counter[str] = Counter()
    prepare = scorer.prepare
    erased_before = erasures.erased_before
    for tp, records in batches.items():
        partition = owned.get(tp.partition)
        if partition is None or not records:
            continue
        entries, ended = by_partition.setdefault(tp.partition, ([], []))
        seen[tp.topic] += len(records)
        for record in records:
            headers = record.headers
            if headers and is_end_marker(headers):
                seen[tp.topic] -= 1  # a backfill's end marker: not an event
                ended.append(tp.topic)
                continue
            try:
                prepared = prepare(tp.topic, record.value or b"", now)
            except Exception as exc:
                await outputs.reject(exc, tp, record)
                continue
            if erased_before(prepared.fact.user_id, record.timestamp):
                metrics.ERASED_EVENTS.labels(tp.topic).inc()
                continue
            history = bool(headers) and is_backfill(headers)
            entries.append((prepared.fact.ts_ms, len(entries), tp, record, prepared, history))
        partition.offsets.read(tp, records[-1].offset + 1)
    for topic, count in seen.items():
        metrics.EVENTS_IN.labels(topic).inc(count)
    return [
        PartitionBatch(number, sorted(entries, key=_by_event_time), ended)
        for number, (entries, ended) in by_partition.items()
    ]
