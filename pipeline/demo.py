"""The demo traffic generator: simulated weeks of a shop's users, loaded as a backfill at full
speed, then live in the present."""

from __future__ import annotations

import heapq
import logging
import random
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import orjson

from pipeline.demo_live import Studio
from pipeline.demo_model import World, utc_midnight
from pipeline.settings import Settings
from schemas.chat import ChatEvent
from schemas.client import EventProducer
from schemas.events import AnyEvent
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from schemas.touch import TouchEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    users: int = 2000
    days: int = 120
    seed: int = 7


def topics_of(settings: Settings) -> dict[type[AnyEvent], str]:
    return {
        LiveEvent: settings.topic_live,
        ChatEvent: settings.topic_chat,
        OrderEvent: settings.topic_order,
        TouchEvent: settings.topic_touch,
    }


TOUCH_DELAYS = {"touch_sent": 120, "touch_opened": 900, "touch_clicked": 1500}  # seconds


def touches_for(trigger: dict[str, Any], rng: random.Random, now: datetime) -> list[TouchEvent]:
    """How a push service answers a user trigger: a touch sent a couple of minutes after it,
    opened by some users, clicked by some of those (event ids derive from the trigger, so an
    answer sent twice is one answer)."""
    if trigger.get("subject_type") != "user":
        return []
    at = datetime.fromtimestamp(int(trigger["at_ms"]) / 1000, tz=UTC)
    kinds = ["touch_sent"]
    if rng.random() < 0.6:
        kinds.append("touch_opened")
        if rng.random() < 0.4:
            kinds.append("touch_clicked")
    return [
        TouchEvent(
            event_id=f"{trigger['id']}-{kind}",
            type=kind,  # type: ignore[arg-type]
            user_id=trigger["subject_id"],
            ts=min(at + timedelta(seconds=TOUCH_DELAYS[kind]), now),
            campaign_id=f"trigger-{trigger['rule']}",
            channel="wecom",
            trigger_id=trigger["id"],
        )
        for kind in kinds
    ]


class Outreach:
    """Follows `lifecycle-triggers` (kafka-python, assigned partitions: no consumer group)
    and answers each user trigger with touches, so the demo's dashboards show the loop."""

    def __init__(self, settings: Settings, seed: int) -> None:
        from kafka import KafkaConsumer

        self.topic = settings.topic_triggers
        self.rng = random.Random(seed)
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap.split(","),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self.assigned = False

    def poll(self) -> list[TouchEvent]:
        from kafka import TopicPartition

        if not self.assigned:
            partitions = self.consumer.partitions_for_topic(self.topic)
            if not partitions:
                return []
            self.consumer.assign([TopicPartition(self.topic, p) for p in sorted(partitions)])
            self.assigned = True
        now = datetime.now(tz=UTC)
        out: list[TouchEvent] = []
        for records in self.consumer.poll(timeout_ms=0).values():
            for record in records:
                try:
                    out += touches_for(orjson.loads(record.value), self.rng, now)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    log.warning("demo outreach: unreadable trigger at %s[%d]@%d",
                                record.topic, record.partition, record.offset)  # fmt: skip
        return out

    def close(self) -> None:
        self.consumer.close()


def backfill_history(
    settings: Settings, world: World, start: datetime, stop: list[bool], studio: Studio
) -> tuple[int, datetime, list[AnyEvent]]:
    """The simulated days before now, and the studio's planted people, as one backfill at
    full speed (sorted by event time, marked, ended on every partition): triggers of the past
    fire nothing. Returns the events sent, the first day not loaded, and that day's events
    still in the future."""
    now = datetime.now(tz=UTC)
    history: list[AnyEvent] = studio.planted(now)
    day = start
    while day <= now and not stop[0]:
        history += world.day(day)
        day += timedelta(days=1)
    # What happened within the triggers' age of now goes live, not into the backfill: it is
    # the present, and the history fires no trigger.
    cutoff = now - timedelta(seconds=settings.trigger_max_age_seconds)
    future = [e for e in history if e.ts >= cutoff]
    past = sorted((e for e in history if e.ts < cutoff), key=lambda e: e.ts)
    backfill_id = f"demo-{int(now.timestamp())}"
    with EventProducer(
        settings.kafka_bootstrap, topics=topics_of(settings), backfill_id=backfill_id
    ) as producer:
        for event in past:
            if stop[0]:
                break
            producer.send(event)
        producer.end_backfill()
    days = (now - start).days
    log.info("demo: %d events of %d days loaded as backfill %s", len(past), days, backfill_id)
    return len(past), day, future


def utc_second(at: datetime) -> datetime:
    return at.replace(microsecond=0)


def run_demo(settings: Settings, config: DemoConfig, follow: bool = True) -> int:
    """Load the simulated history as a backfill, then produce live until stopped (without
    `follow`, stop after the history)."""
    stop = [False]

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    now = datetime.now(tz=UTC)
    sim_start = utc_midnight(now) - timedelta(days=config.days)
    world = World(config.users, sim_start, config.days, config.seed)
    studio = Studio(world, now, config.seed)
    sent, day, future = backfill_history(settings, world, sim_start, stop, studio)
    second = utc_second(datetime.now(tz=UTC))
    if not follow:
        return sent
    pending: list[tuple[datetime, int, AnyEvent]] = []
    seq = 0
    for event in future:
        seq += 1
        heapq.heappush(pending, (event.ts, seq, event))
    last_report = time.time()
    outreach = Outreach(settings, config.seed)
    next_poll = 0.0
    with EventProducer(settings.kafka_bootstrap, topics=topics_of(settings)) as producer:
        while not stop[0]:
            while second <= datetime.now(tz=UTC) + timedelta(seconds=1):  # the present
                for event in studio.second(second):
                    seq += 1
                    heapq.heappush(pending, (event.ts, seq, event))
                second += timedelta(seconds=1)
            if not pending or pending[0][0] >= day:
                for event in world.day(day):
                    seq += 1
                    heapq.heappush(pending, (event.ts, seq, event))
                day += timedelta(days=1)
                continue
            if time.time() >= next_poll:  # answer triggers while waiting for the next event
                next_poll = time.time() + 0.5
                for touch in outreach.poll():
                    seq += 1
                    heapq.heappush(pending, (touch.ts, seq, touch))
            wait = pending[0][0].timestamp() - time.time()  # live: due at its own time
            if wait > 0.005:
                time.sleep(min(wait, 0.25))
                continue
            _, _, event = heapq.heappop(pending)
            producer.send(event)
            sent += 1
            if time.time() - last_report >= 10:
                log.info("demo: live, %d events sent", sent)
                last_report = time.time()
    outreach.close()
    log.info("demo: stopped after %d events", sent)
    return sent
