"""The Faust application factory: broker, tables and topics from settings."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from pipeline.settings import Settings


@dataclass
class Wiring:
    """The app and the channels agents use, built once per process."""

    app: faust.App
    scores: faust.TopicT
    dead_letters: faust.TopicT
    models: faust.TopicT
    population: faust.TopicT
    commands: faust.TopicT


def create_app(settings: Settings) -> Wiring:
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",")],
        datadir=str(settings.data_dir / "worker"),
        topic_partitions=settings.topic_partitions,
        web_enabled=False,
        # The embedded broker joins a group after about half the session timeout.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_linger_ms=5,
        broker_commit_interval=1.0,
    )
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    scores = app.topic(settings.topic_scores, **raw)
    dead_letters = app.topic(settings.topic_dead_letters, **raw)
    models = app.topic(settings.topic_models, **raw)
    commands = app.topic(settings.topic_commands, **raw)
    population = app.topic(settings.topic_population, **raw)
    return Wiring(
        app=app,
        scores=scores,
        dead_letters=dead_letters,
        models=models,
        population=population,
        commands=commands,
    )
