"""ClickHouse going away under a running worker: nothing is committed while rows exist only in
memory, scoring goes on, and once the store is back every row and every user's state is made
durable, so a worker killed afterwards loses nothing."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from sinks.factory import open_client
from tests.integration.conftest import (
    Running,
    pipeline_env,
    start_pipeline,
    wait_worker_assigned,
    worker_metric,
)
from tests.integration.parts import (
    Proc,
    free_port,
    lifecycle,
    start_clickhouse_server,
    wait_until,
)
from tests.integration.test_crash_recovery import assert_matches_reference, send, workload

pytestmark = pytest.mark.integration


def committed_offsets(running: Running) -> dict[TopicPartition, int]:
    """The scoring group's committed offsets on the input topics."""
    settings = running.settings

    async def read() -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"{settings.app_id}-scoring",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            out = {}
            for topic in settings.input_topics:
                for partition in range(settings.topic_partitions):
                    tp = TopicPartition(topic, partition)
                    out[tp] = await consumer.committed(tp) or 0
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_a_clickhouse_outage_commits_nothing_then_loses_nothing(
    broker: str, tmp_path: Path
) -> None:
    ports = (free_port(), free_port())
    server, tcp = start_clickhouse_server(tmp_path / "store", ports)
    prefix = f"so{uuid.uuid4().hex[:8]}"
    env = pipeline_env(broker, f"clickhouse://127.0.0.1:{tcp}/{prefix}", tmp_path, prefix)
    env.update(MODEL_REFIT_SECONDS="3600", TABLE_STORE="rocksdb://")
    running = start_pipeline(env, tmp_path)
    try:
        wait_worker_assigned(running)
        messages = workload(running, users=60, days=120, seed=17)
        cut1, cut2 = len(messages) * 2 // 5, len(messages) * 7 // 10
        first, during, after = messages[:cut1], messages[cut1:cut2], messages[cut2:]
        records = send(running, first)  # (end markers are records too: offsets count them)
        wait_until(
            lambda: sum(committed_offsets(running).values()) == records,
            60, "the first part committed",
        )  # fmt: skip

        # The store goes away: the worker goes on scoring, but commits nothing.
        server.stop()
        failures = worker_metric(running, "lifecycle_sink_failures_total")
        during_records = send(running, during)
        wait_until(
            lambda: worker_metric(running, "lifecycle_events_in_total") >= cut2
            and worker_metric(running, "lifecycle_sink_failures_total") >= failures + 3,
            60, "the second part read while the store is down",
        )  # fmt: skip
        assert sum(committed_offsets(running).values()) == records
        assert running.worker.alive(), running.worker.tail()

        # Back on the same data and port: the held rows go in, the users changed during the
        # outage go to the changelog, then the offsets move.
        server, _ = start_clickhouse_server(tmp_path / "store", ports)
        wait_until(
            lambda: sum(committed_offsets(running).values()) == records + during_records,
            60, "everything committed once the store is back",
        )  # fmt: skip

        # A worker killed now has nothing left to redo: its replacement starts from the
        # changelog and the committed offsets alone, and goes on from there.
        assert running.worker.stop(signal.SIGKILL) == -signal.SIGKILL
        running.worker = Proc("worker", lifecycle("worker"), env, tmp_path / "worker-2.log")
        wait_worker_assigned(running)
        send(running, after)
        assert_matches_reference(running, messages)

        client = open_client(running.settings)
        distinct = len({value for _, _, value in messages})
        try:
            wait_until(
                lambda: client.query("SELECT uniqExact(event_id) AS n FROM events")[0]["n"]
                == distinct,
                30, "one row per distinct event in ClickHouse",
            )  # fmt: skip
        finally:
            client.close()
    finally:
        running.api.stop()
        running.worker.stop()
        server.stop()
