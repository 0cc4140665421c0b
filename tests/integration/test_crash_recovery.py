"""Workers killed with SIGKILL mid-stream, restarted or replaced, end where the reference
scorer does."""

from __future__ import annotations

import random
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from kafka.partitioner.default import murmur2

from pipeline.demo import topics_of
from pipeline.demo_model import World, utc_midnight
from pipeline.reference import differences as matches
from pipeline.reference import reference_scores
from schemas.client import EventProducer
from tests.integration.conftest import (
    Running,
    chdb_pipeline,
    pipeline_env,
    start_pipeline,
    wait_worker_assigned,
    worker_metric,
)
from tests.integration.parts import Proc, free_port, lifecycle, metric_at, wait_until

pytestmark = pytest.mark.integration

Message = tuple[str, bytes, bytes]  # topic, key, value


def workload(running: Running, users: int, days: int, seed: int) -> list[Message]:
    topics = topics_of(running.settings)
    now = datetime.now(tz=UTC)
    start = utc_midnight(now) - timedelta(days=days)
    world = World(users, start, days, seed)
    events = [e for d in range(days) for e in world.day(start + timedelta(days=d))]
    events = sorted((e for e in events if e.ts < now), key=lambda e: e.ts)
    messages = [
        (topics[type(e)], e.user_id.encode(), e.model_dump_json(exclude_none=True).encode())
        for e in events
    ]
    rng = random.Random(seed)
    for _ in range(len(messages) // 40):  # producer resends, soon after the original
        original = rng.randrange(len(messages))
        messages.insert(min(len(messages), original + 1 + rng.randrange(100)), messages[original])
    return messages


def partition_of(partitions: int) -> Any:
    return lambda user_id: (murmur2(user_id.encode()) & 0x7FFFFFFF) % partitions


def send(running: Running, messages: list[Message]) -> int:
    """Months of history go in as a backfill (its topics are read far apart; the end markers
    let the watermark on); returns the records written, end markers included."""
    backfill = f"history-{uuid.uuid4().hex[:6]}"
    with EventProducer(running.settings.kafka_bootstrap, backfill_id=backfill) as producer:
        for topic, key, value in messages:
            producer.send_raw(topic, value, key=key)
        return len(messages) + producer.end_backfill()


@pytest.fixture
def running(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("crash")
    prefix = f"cr{uuid.uuid4().hex[:8]}"
    env = {"MODEL_REFIT_SECONDS": "3600", "TABLE_STORE": "rocksdb://"}
    with chdb_pipeline(broker, tmp, prefix, **env) as pipeline:
        yield pipeline


def test_sigkill_mid_stream_then_restart_equals_the_reference(running: Running) -> None:
    messages = workload(running, users=80, days=120, seed=5)
    first, second, third = (
        messages[: len(messages) // 3],
        messages[len(messages) // 3 : 2 * len(messages) // 3],
        messages[2 * len(messages) // 3 :],
    )
    send(running, first)
    wait_until(
        lambda: worker_metric(running, "lifecycle_events_scored_total") >= len(first) // 2,
        60, "the worker to score half of the first third",
    )  # fmt: skip
    send(running, second)
    wait_until(
        lambda: worker_metric(running, "lifecycle_events_in_total") > len(first) + 10,
        60, "the worker to be inside the second third",
    )  # fmt: skip
    assert running.worker.stop(signal.SIGKILL) == -signal.SIGKILL
    running.worker = Proc("worker", lifecycle("worker"), running.env, running.tmp / "worker2.log")
    wait_worker_assigned(running)
    send(running, third)

    assert_matches_reference(running, messages)


@pytest.mark.soak
@pytest.mark.parametrize("seed", [21, 22, 23])
def test_repeated_sigkills_on_a_long_stream_equal_the_reference(
    running: Running, seed: int
) -> None:
    """`make soak`: a longer stream, the worker killed at four points, restarted each time."""
    messages = workload(running, users=300, days=180, seed=seed)
    parts = 5
    size = len(messages) // parts
    chunks = [messages[i * size : (i + 1) * size] for i in range(parts - 1)]
    chunks.append(messages[(parts - 1) * size :])
    for number, chunk in enumerate(chunks[:-1], start=1):
        send(running, chunk)
        # Each worker process counts from zero (its replay included): kill it mid-chunk.
        target = len(chunk) // 2
        wait_until(
            lambda target=target: worker_metric(running, "lifecycle_events_in_total") > target,
            120, "the worker to be inside the chunk",
        )  # fmt: skip
        assert running.worker.stop(signal.SIGKILL) == -signal.SIGKILL
        log = running.tmp / f"worker-{seed}-{number}.log"
        running.worker = Proc("worker", lifecycle("worker"), running.env, log)
        wait_worker_assigned(running)
    send(running, chunks[-1])
    assert_matches_reference(running, messages)


def assert_matches_reference(running: Running, messages: list[Message]) -> None:
    """Every user served by the API ends where the offline reference scorer does."""
    references = reference_scores(
        ((topic, value) for topic, _, value in messages),
        running.settings,
        partition_of(running.settings.topic_partitions),
    )
    assert {"silent", "churned"} <= {r.stage.value for r in references.values() if r.stage}

    def differences() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for user_id, ref in references.items():
            response = running.get(f"/v1/users/{user_id}")
            if response.status_code != 200:
                out[user_id] = [f"status {response.status_code}"]
                continue
            if diff := matches(orjson.loads(response.content), ref):
                out[user_id] = diff
        return out

    last: dict[str, dict[str, list[str]]] = {}

    def caught_up() -> bool:
        last["diff"] = differences()
        return not last["diff"]

    try:
        wait_until(caught_up, 120, "every user to match the reference", step=0.5)
    except AssertionError:
        sample = dict(list(last["diff"].items())[:5])
        raise AssertionError(f"{len(last['diff'])} users differ, e.g. {sample}") from None


@pytest.fixture
def two_workers(
    broker: str, clickhouse_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Running, list[Proc]]]:
    """A pipeline on the ClickHouse server (which several workers can share), and the
    environment for a second worker with a data directory and metrics port of its own."""
    tmp = tmp_path_factory.mktemp("rebalance")
    prefix = f"rb{uuid.uuid4().hex[:8]}"
    env = pipeline_env(broker, f"clickhouse://127.0.0.1:{clickhouse_port}/{prefix}", tmp, prefix)
    env["MODEL_REFIT_SECONDS"] = "3600"
    running = start_pipeline(env, tmp)
    others: list[Proc] = []
    try:
        wait_worker_assigned(running)
        yield running, others
    finally:
        for other in others:
            other.stop()
        running.api.stop()
        running.worker.stop()


def test_partitions_move_between_workers_and_every_user_stays_exact(
    two_workers: tuple[Running, list[Proc]],
) -> None:
    running, others = two_workers
    messages = workload(running, users=80, days=120, seed=9)
    first, rest = messages[: len(messages) // 2], messages[len(messages) // 2 :]
    send(running, first)
    wait_until(
        lambda: worker_metric(running, "lifecycle_events_scored_total") >= len(first) // 3,
        60, "the first worker to score a third of the first half",
    )  # fmt: skip
    # A second worker, with a data directory and metrics port of its own, joins the group:
    # the partitions are split between the two.
    port = free_port()
    env = dict(running.env, DATA_DIR=str(running.tmp / "data2"), WORKER_METRICS_PORT=str(port))
    second = Proc("worker-2", lifecycle("worker"), env, running.tmp / "worker-2.log")
    others.append(second)
    wait_until(
        lambda: second.alive() and metric_at(port, "lifecycle_worker_assigned_partitions") > 0,
        60, "the second worker to take partitions",
    )  # fmt: skip
    send(running, rest[: len(rest) // 2])
    wait_until(
        lambda: metric_at(port, "lifecycle_events_scored_total") > 0,
        60, "the second worker to score events",
    )  # fmt: skip
    # The first worker dies without leaving the group: its partitions move once its session
    # times out, to a worker that rebuilds their users from the changelog.
    assert running.worker.stop(signal.SIGKILL) == -signal.SIGKILL
    send(running, rest[len(rest) // 2 :])
    assert_matches_reference(running, messages)


def test_a_long_backfill_read_in_small_batches_ends_on_the_reference(
    broker: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """150 days of 150 users loaded as a backfill and read fifty records at a time, so the
    topics of a partition are read far apart in event time: nothing waits for anything, late
    events derive their users' history again, and the end is the reference's, with no gap."""
    tmp = tmp_path_factory.mktemp("longreplay")
    prefix = f"lr{uuid.uuid4().hex[:8]}"
    env = {"MODEL_REFIT_SECONDS": "3600", "BATCH_MAX_RECORDS": "50"}
    with chdb_pipeline(broker, tmp, prefix, **env) as running:
        messages = workload(running, users=150, days=150, seed=12)
        with EventProducer(running.settings.kafka_bootstrap, backfill_id=prefix) as producer:
            for topic, key, value in messages:
                producer.send_raw(topic, value, key=key)
            producer.end_backfill()
        assert_matches_reference(running, messages)
        assert worker_metric(running, "lifecycle_history_gaps_total") == 0
