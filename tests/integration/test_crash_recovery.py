"""A worker killed with SIGKILL mid-stream and restarted ends where the reference scorer does."""

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
from pipeline.reference import Reference, reference_scores
from schemas.client import EventProducer
from tests.integration.conftest import (
    Running,
    chdb_pipeline,
    wait_worker_assigned,
    worker_metric,
)
from tests.integration.parts import Proc, lifecycle, wait_until

# A long fault run: `make soak`. It does not pass reliably yet: after the SIGKILL a few
# users can end with an event too few or too many (see the open scoring issue).
pytestmark = [pytest.mark.integration, pytest.mark.soak]

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


def send(running: Running, messages: list[Message]) -> None:
    with EventProducer(running.settings.kafka_bootstrap) as producer:
        for topic, key, value in messages:
            producer.send_raw(topic, value, key=key)
        producer.flush()


def matches(document: dict[str, Any], ref: Reference) -> list[str]:
    """Fields of the served document that differ from the reference."""
    expected = {
        "stage": ref.stage.value if ref.stage else None,
        "stage_since": _iso(ref.at(ref.stage_since_ms)),
        "reactivations": ref.reactivations,
        "interactions": len(ref.interactions),
        "order_count": ref.order_count,
        "refund_count": ref.refunds,
        "monetary": round(ref.monetary_cents / 100, 2),
        "last_event_at": _iso(ref.at(ref.last_event_ms)),
        "first_paid_at": _iso(ref.at(min(ref.paid, default=None))),
        "last_paid_at": _iso(ref.at(max(ref.paid, default=None))),
    }
    return [
        f"{k}: {document.get(k)!r} != {v!r}" for k, v in expected.items() if document.get(k) != v
    ]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


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
