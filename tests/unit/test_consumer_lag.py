"""Consumer lag and catching up (`agents.lag`), and what readiness decides from them
(`pipeline.readiness.behind`)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.structs import TopicPartition

from agents.lag import ConsumerLag
from pipeline import metrics
from pipeline.readiness import behind, readiness
from pipeline.worker_status import WorkerReport

T = TopicPartition("live-events", 0)
U = TopicPartition("orders", 0)
NOW = 1_700_000_000.0


class Consumer:
    """The consumer's side the tracker reads: high watermarks and committed offsets."""

    def __init__(self, committed: dict[TopicPartition, int | None]) -> None:
        self.highwaters: dict[TopicPartition, int] = {}
        self._committed = committed

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters.get(partition)

    async def committed(self, partition: TopicPartition) -> int | None:
        return self._committed.get(partition)

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: 5 for tp in partitions}


def gauge(metric: object, *labels: str) -> float:
    return metric.labels(*labels)._value.get()  # type: ignore[attr-defined, no-any-return]


def test_lag_counts_from_the_committed_offset_and_catches_up_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("agents.lag.time.time", lambda: NOW)  # assigned at NOW
    consumer = Consumer({T: 100, U: None})
    lag = ConsumerLag("scoring")
    asyncio.run(lag.assigned(consumer, [T, U]))
    assert gauge(metrics.CONSUMER_COMMITTED, "scoring", "orders", "0") == 5  # its beginning
    # Nothing fetched yet: the high watermarks are unknown, so not caught up.
    assert lag.measure(consumer, NOW).unknown == [0]

    consumer.highwaters = {T: 1_100, U: 5}
    first = lag.measure(consumer, NOW + 10)
    assert first.records == 1_000
    assert first.seconds == 10.0  # none read since assignment at NOW
    assert first.catching_up == [0]
    assert gauge(metrics.CONSUMER_LAG, "scoring", "live-events", "0") == 1_000

    lag.read(T, 600, int((NOW + 8) * 1000))  # half-way: the last record read was written at +8
    half = lag.measure(consumer, NOW + 12)
    assert (half.records, half.seconds, half.catching_up) == (500, 4.0, [0])

    consumer.highwaters[T] = 1_300  # more comes while catching up: the mark stays at 1,100
    lag.read(T, 1_100, int((NOW + 11) * 1000))
    caught = lag.measure(consumer, NOW + 13)
    assert caught.catching_up == []
    assert (caught.records, caught.seconds) == (200, 2.0)

    # Behind again later: lag, but caught up stays (readiness then goes by the seconds).
    consumer.highwaters[T] = 9_000
    assert lag.measure(consumer, NOW + 100).catching_up == []

    lag.read(T, 9_000, int((NOW + 99) * 1000))
    idle = lag.measure(consumer, NOW + 500)
    assert (idle.records, idle.seconds) == (0, 0.0)  # nothing waits: not behind, however old

    lag.committed({T: 9_000})
    assert gauge(metrics.CONSUMER_COMMITTED, "scoring", "live-events", "0") == 9_000
    lag.keep_only([U])  # T moved away: its gauges go
    samples = [s for m in metrics.CONSUMER_LAG.collect() for s in m.samples]
    assert not any(
        s.labels == {"engine": "scoring", "topic": "live-events", "partition": "0"} for s in samples
    )


def report(**fields: object) -> WorkerReport:
    return WorkerReport(worker="w1", reported_at=NOW, partitions={"scoring": [0, 1]},
                        **fields)  # type: ignore[arg-type]  # fmt: skip


def test_behind_says_restoring_then_catching_up_then_seconds_behind() -> None:
    assert behind(report(restoring=["scoring"]), 30) == (
        "is restoring the state of its scoring partitions"
    )
    assert behind(report(catching_up={"scoring": [1]}, lag={"scoring": 12_345}), 30) == (
        "is catching up on scoring partitions 1 (12,345 records to read)"
    )
    assert behind(report(lag={"scoring": 7}, lag_seconds={"scoring": 42.4}), 30) == (
        "is 42 s behind its scoring input (7 records waiting; READY_MAX_LAG_SECONDS is 30)"
    )
    assert behind(report(lag={"scoring": 7}, lag_seconds={"scoring": 29.9}), 30) is None
    assert behind(report(catching_up={"scoring": []}), 30) is None


def test_readiness_holds_back_for_a_worker_not_caught_up_and_says_why() -> None:
    verdict = readiness([report(restoring=["scoring"])], NOW + 1, 60, 30)
    assert not verdict.ready
    assert verdict.reasons == ["worker w1 is restoring the state of its scoring partitions"]
    assert (verdict.held, verdict.stalled) == (1, 0)  # held back, but not stalled
    fine = readiness([report(lag={"scoring": 3}, lag_seconds={"scoring": 0.2})], NOW + 1, 60, 30)
    assert fine.ready
    assert fine.reasons == []


def test_a_report_round_trips_and_an_older_one_reads_with_defaults() -> None:
    full = report(restoring=["rooms"], catching_up={"scoring": [1]}, lag={"scoring": 9},
                  lag_seconds={"scoring": 1.5})  # fmt: skip
    assert WorkerReport.decode(full.encode()) == full
    older = b'{"worker": "w0", "reported_at": 1.0, "partitions": {"scoring": [0]}}'
    decoded = WorkerReport.decode(older)
    assert decoded is not None
    assert (decoded.restoring, decoded.catching_up, decoded.lag) == ([], {}, {})


def test_readiness_needs_an_owner_for_every_scoring_partition() -> None:
    joining = WorkerReport(worker="w2", reported_at=NOW, partitions={})  # not assigned yet
    verdict = readiness([report(), joining], NOW + 1, 60, 30, partition_count=3)
    assert verdict.reasons == [
        "no worker owns scoring partitions 2 yet (a worker joining its group, or none running)"
    ]
    assert readiness([report()], NOW + 1, 60, 30, partition_count=2).ready


def test_records_read_before_the_committed_offset_is_known_count() -> None:
    """The engine's loop may read a partition while the assignment still asks the broker for
    its committed offset: that position stands, or the partition stays 'catching up'."""
    lag = ConsumerLag("scoring")

    class ReadMeanwhile(Consumer):
        async def committed(self, partition: TopicPartition) -> int | None:
            lag.read(partition, 400, int(NOW * 1000))  # the loop, while this waits
            return 0

    consumer = ReadMeanwhile({})
    asyncio.run(lag.assigned(consumer, [T]))
    consumer.highwaters = {T: 400}
    measured = lag.measure(consumer, NOW + 1)
    assert (measured.records, measured.catching_up) == (0, [])
    lag.read(U, 7, None)  # read before its assignment was even asked about
    asyncio.run(lag.assigned(consumer, [U]))
    consumer.highwaters[U] = 7
    assert lag.measure(consumer, NOW + 1).records == 0
