"""A small producer SDK: validated events to their topics, keyed by user_id (kafka-python)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.chat import ChatEvent
from schemas.events import AnyEvent
from schemas.headers import Headers, backfill_headers, end_marker_headers
from schemas.live import LiveEvent
from schemas.order import OrderEvent
from schemas.touch import TouchEvent

DEFAULT_TOPICS: dict[type[AnyEvent], str] = {
    LiveEvent: "live-events",
    ChatEvent: "chat-events",
    OrderEvent: "order-events",
    TouchEvent: "touch-events",
}


class EventProducer:
    """Sends events as JSON to the topic of their kind, keyed by user_id for the fast path.

    History goes as a backfill: `EventProducer(bootstrap, backfill_id="2025-import")` marks
    every record it sends with the Kafka header `lifecycle-backfill: 2025-import`, and
    `end_backfill()`, after the last event, sends the end marker (header
    `lifecycle-backfill-end: 2025-import`, null key, empty value) to every partition of its
    topics, so the pipeline can tell when the backfill is finished on each partition. Send a
    backfill in event-time order; `lifecycle backfill FILE` does all of this for a file.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: dict[type[AnyEvent], str] | None = None,
        backfill_id: str | None = None,
        **producer_config: Any,
    ) -> None:
        from kafka import KafkaProducer

        # acks=1 leaves idempotence off (kafka-python would say so in a warning each time).
        config: dict[str, Any] = {
            "linger_ms": 5, "batch_size": 64 * 1024, "acks": 1, "enable_idempotence": False,
        }  # fmt: skip
        config.update(producer_config)
        self.topics = dict(DEFAULT_TOPICS if topics is None else topics)
        self.backfill_id = backfill_id
        self.headers: Headers = [] if backfill_id is None else backfill_headers(backfill_id)
        self._sent_to: set[str] = set()  # the topics written, for the end markers
        self._mapped = topics is not None  # an explicit map: its topics all get end markers
        self._producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), **config)

    def topic_for(self, event: AnyEvent) -> str:
        return self.topics[type(event)]

    def send(self, event: AnyEvent) -> None:
        """Queue one event; `flush()` waits until everything queued is acknowledged."""
        self.send_to(self.topic_for(event), event)

    def send_to(self, topic: str, event: AnyEvent) -> Any:
        """Queue one event to an explicit topic, keyed by user_id; returns the delivery future."""
        self._sent_to.add(topic)
        return self._producer.send(
            topic,
            key=event.user_id.encode(),
            value=event.model_dump_json(exclude_none=True).encode(),
            headers=self.headers,
        )

    def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (no validation), for tests and replays."""
        self._sent_to.add(topic)
        self._producer.send(topic, key=key, value=value, headers=self.headers)

    def end_backfill(self, timeout: float | None = 30.0) -> int:
        """After the backfill's last event: wait until every event is acknowledged, then send
        the end marker to every partition of each topic of its topic map (when one was given,
        or nothing was sent) and of each topic it sent to; returns how many were sent."""
        if self.backfill_id is None:
            raise ValueError("not a backfill: create the EventProducer with backfill_id=...")
        self.flush(timeout=timeout)
        headers = end_marker_headers(self.backfill_id)
        sent = 0
        mapped = set(self.topics.values()) if self._mapped or not self._sent_to else set()
        for topic in sorted(mapped | self._sent_to):
            for partition in sorted(self._producer.partitions_for(topic)):
                self._producer.send(topic, value=b"", partition=partition, headers=headers)
                sent += 1
        self.flush(timeout=timeout)
        return sent

    def send_all(self, events: Iterable[AnyEvent]) -> int:
        count = 0
        for event in events:
            self.send(event)
            count += 1
        return count

    def flush(self, timeout: float | None = 30.0) -> None:
        self._producer.flush(timeout=timeout)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout=timeout)
        self._producer.close(timeout=timeout)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
