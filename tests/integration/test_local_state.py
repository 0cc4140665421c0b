"""A worker restarted on the same data directory starts from its local copy of each partition's
users and reads only the changelog after it."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.topics import end_offset
from tests.integration.conftest import Running, chdb_pipeline, wait_worker_assigned
from tests.integration.parts import Proc, lifecycle, wait_until
from tests.integration.test_crash_recovery import assert_matches_reference, send, workload

pytestmark = pytest.mark.integration


def test_the_end_offset_is_after_the_last_record_of_the_last_batch(broker: str) -> None:
    topic = f"ends-{uuid.uuid4().hex[:8]}"

    async def run() -> tuple[int, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 2, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=50)
        await producer.start()
        try:
            for batch in range(3):  # three batches of five records
                for i in range(5):
                    await producer.send(topic, value=b"%d-%d" % (batch, i), partition=0)
                await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker)
        await consumer.start()
        try:
            written, empty = TopicPartition(topic, 0), TopicPartition(topic, 1)
            consumer.assign([written, empty])
            return await end_offset(consumer, written), await end_offset(consumer, empty)
        finally:
            await consumer.stop()

    written_end, empty_end = asyncio.run(run())
    assert written_end == 15
    assert empty_end == 0


@pytest.fixture
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("local")
    prefix = f"ls{uuid.uuid4().hex[:8]}"
    with chdb_pipeline(broker, tmp, prefix, MODEL_REFIT_SECONDS="3600") as pipeline:
        yield pipeline


def test_a_restarted_worker_starts_from_its_local_state(running: Running) -> None:
    messages = workload(running, users=80, days=120, seed=5)
    first, rest = messages[: len(messages) // 2], messages[len(messages) // 2 :]
    send(running, first)
    wait_until(
        lambda: running.get(f"/v1/users/{first[-1][1].decode()}").status_code == 200,
        60, "the first half scored",
    )  # fmt: skip
    assert running.worker.stop() == 0
    log = running.tmp / "worker-restarted.log"
    running.worker = Proc("worker", [*lifecycle("worker"), "--loglevel", "info"], running.env, log)
    wait_worker_assigned(running)
    text = log.read_text()
    assert "ahead of the changelog" not in text, text[-2000:]
    loaded = [int(n) for n in re.findall(r"partition \d+: (\d+) users from local state", text)]
    assert loaded, text[-2000:]
    assert sum(loaded) > 0
    send(running, rest)
    assert_matches_reference(running, messages)
