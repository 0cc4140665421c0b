"""Create the product's topics with the partitions and configs they need."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.settings import Settings

# Explicit retention: the embedded broker reports only the configs a topic was created with.
_RETAIN = {"retention.ms": "604800000", "retention.bytes": "-1"}


def topic_specs(settings: Settings) -> list[NewTopic]:
    n = settings.topic_partitions
    specs = [
        NewTopic(name, num_partitions=n, replication_factor=1, topic_configs=dict(_RETAIN))
        for name in (
            *settings.input_topics,
            settings.topic_triggers,
            settings.topic_dead_letters,
            settings.topic_stage_changes,
            settings.topic_commands,
            settings.room_comments_topic,
        )
    ]
    compacted = {"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
    specs.append(NewTopic(settings.topic_scores, n, 1, topic_configs=dict(compacted)))
    specs.append(NewTopic(settings.changelog_topic, n, 1, topic_configs=dict(compacted)))
    specs.append(NewTopic(settings.room_changelog_topic, n, 1, topic_configs=dict(compacted)))
    specs.append(NewTopic(settings.topic_models, 1, 1, topic_configs=dict(compacted)))
    specs.append(NewTopic(settings.topic_population, 1, 1, topic_configs=dict(compacted)))
    specs.append(NewTopic(settings.worker_status_topic, 1, 1, topic_configs=dict(compacted)))
    specs.append(NewTopic(settings.erasures_topic, 1, 1, topic_configs=dict(compacted)))
    return specs


async def ensure_topics(settings: Settings, timeout_s: float = 20.0) -> list[str]:
    """Create missing topics; returns the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000
    )
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing:
            await admin.create_topics(missing)
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def end_offset(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """The offset after the last record of a partition (the consumer must have it assigned).

    The embedded broker reports as the end the offset after the first record of the last
    batch, not after its last record; reading that batch gives the true end. The consumer is
    left positioned there."""
    reported: int = (await consumer.end_offsets([tp]))[tp]
    if reported == 0:
        return 0
    consumer.seek(tp, reported - 1)
    got = await consumer.getmany(tp, timeout_ms=1000)
    records = got.get(tp, [])
    return max(reported, records[-1].offset + 1) if records else reported
