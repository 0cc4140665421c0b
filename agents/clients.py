"""The Kafka clients of an engine: a producer, a reader of changelog partitions and the group
consumer of its inputs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.structs import TopicPartition

from pipeline.settings import Settings

# How long the broker may keep a fetch waiting for records: a topic read to its end is
# fetched again this often.
FETCH_WAIT_MS = 20


Moved = Callable[[set[TopicPartition]], Awaitable[None]]


class Rebalance(ConsumerRebalanceListener):
    """Hands the partitions that move to the engine's `revoked` and `assigned`."""

    def __init__(self, revoked: Moved, assigned: Moved) -> None:
        self.revoked = revoked
        self.assigned = assigned

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.assigned(set(assigned))


class Clients(NamedTuple):
    producer: AIOKafkaProducer
    reader: AIOKafkaConsumer  # changelog partitions assigned here; no group
    consumer: AIOKafkaConsumer  # the engine's inputs, in its consumer group


def quiet_client_logs() -> None:
    """The worker's logging set-up leaves the client libraries at DEBUG: every send built a log
    record (a third of the cost of a send) that no handler printed."""
    for name in ("aiokafka", "kafka"):
        library = logging.getLogger(name)
        library.setLevel(max(library.getEffectiveLevel(), logging.INFO))


async def start_clients(
    settings: Settings,
    group: str,
    topics: list[str],
    listener: ConsumerRebalanceListener,
    producer_options: dict[str, Any],
    consumer_options: dict[str, Any],
) -> Clients:
    """Start the producer and the reader; the consumer subscribes to `topics` in
    `{app_id}-{group}` and is not started: its start joins the group, whose first assignment
    calls the engine, so the engine holds the clients before it starts the consumer."""
    bootstrap = settings.kafka_bootstrap
    started: list[AIOKafkaProducer | AIOKafkaConsumer] = []
    try:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **producer_options)
        await producer.start()
        started.append(producer)
        reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await reader.start()
        started.append(reader)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"{settings.app_id}-{group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The embedded broker lets a member join after about half the session timeout.
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            # Answer a fetch as soon as records come: a trigger must not wait for a full one.
            fetch_max_wait_ms=FETCH_WAIT_MS,
            **consumer_options,
        )
        consumer.subscribe(topics=topics, listener=listener)
    except BaseException:
        # The engine never gets the clients, so its stop cannot close them.
        for client in reversed(started):
            await client.stop()
        raise
    return Clients(producer, reader, consumer)


async def start_scoring_clients(
    settings: Settings, topics: list[str], listener: ConsumerRebalanceListener
) -> Clients:
    quiet_client_logs()
    return await start_clients(
        settings,
        "scoring",
        topics,
        listener,
        producer_options={
            "acks": "all",
            "linger_ms": 5,
            "max_batch_size": 256 * 1024,
            "max_request_size": 4 * 1024 * 1024,
        },
        consumer_options={
            # Partition n of every input topic goes to the same worker: a user's events of
            # the four topics meet in one place.
            "partition_assignment_strategy": (RangePartitionAssignor,),
            "max_partition_fetch_bytes": 4 * 1024 * 1024,
        },
    )


async def start_room_clients(settings: Settings, listener: ConsumerRebalanceListener) -> Clients:
    return await start_clients(
        settings,
        "rooms",
        [settings.room_comments_topic],
        listener,
        producer_options={"acks": "all", "linger_ms": 5},
        consumer_options={},
    )
