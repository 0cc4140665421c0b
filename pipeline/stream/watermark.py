"""The watermark of one input partition: how far its event time is known to have come.

Events are applied as they arrive, in any order; the watermark decides only when a derived
fact with no event of its own (a user turning silent or churned) is announced, never when an
event may be applied. A later event can still correct such a fact: the user's history is
derived again and the correction published.

Live records move the watermark: it is the least of the latest event times of the topics
that still have records to read (a topic read to its end does not hold it), as a watermark
across several inputs is; with every topic read to its end, the latest time seen. So a topic
read ahead of the others does not announce idle users that a slower topic's events would
bring back (they would be corrected, but each correction is work and a published record).
A backfill (records with the
`lifecycle-backfill` header) is history loaded at full speed next to live traffic: it does
not move the watermark to the present, and while a topic of the partition is being
backfilled the watermark stays at the backfill's progress (the least of its topics' latest
times), so the backfilled users' idle transitions come in order instead of being announced
at the present and corrected by every later event of the history. A backfill sends each
topic in event-time order, so no event still to come is older than that progress: the users
keep the interaction times from there on and derive their history exactly. Once a backfill
record is seen on a partition, every input topic of it counts as backfilled until its end
marker (one that has not delivered a record yet holds the watermark where it is unknown).
"""

from __future__ import annotations


class PartitionWatermark:
    """Event-time progress of one partition number across the input topics."""

    def __init__(self, topics: tuple[str, ...] = ()) -> None:
        self.topics = topics  # the partition's input topics: all take part in a backfill
        self.live_ms: int | None = None  # latest live event time of any topic
        self.live_by_topic: dict[str, int] = {}  # topic: latest live event time
        self.backfill_ms: dict[str, int] = {}  # topic: latest backfill event time seen
        self.backfilling: set[str] = set()  # topics with a backfill not ended yet
        self.history_ms: int | None = None  # latest backfill event time of any ended backfill
        self.read_to_end: set[str] = set()  # topics with nothing left to read just now
        self.ended: set[str] = set()  # topics whose backfill's end marker came

    def observe(self, topic: str, ts_ms: int, backfill: bool = False) -> None:
        """An event of `topic` was applied."""
        if backfill:
            self.ended.discard(topic)  # (a new backfill of a topic that had ended one)
            if not self.backfilling:
                self.backfilling.update(t for t in self.topics if t not in self.ended)
            self.backfilling.add(topic)
            latest = self.backfill_ms.get(topic)
            self.backfill_ms[topic] = ts_ms if latest is None else max(latest, ts_ms)
        else:
            if self.live_ms is None or ts_ms > self.live_ms:
                self.live_ms = ts_ms
            if topic:  # ("" is what a worker taking the partition over knows it reached)
                latest = self.live_by_topic.get(topic)
                if latest is None or ts_ms > latest:
                    self.live_by_topic[topic] = ts_ms

    def read_up(self, topic: str, at_end: bool) -> None:
        """Whether `topic` has been read to its end: one with nothing left to read and no
        backfill record yet (its share was read before a restart, or it has none) does not
        hold the watermark where it is unknown."""
        if at_end:
            self.read_to_end.add(topic)
        else:
            self.read_to_end.discard(topic)

    def end_backfill(self, topic: str) -> None:
        """The backfill of `topic` on this partition is complete (its end marker came)."""
        self.backfilling.discard(topic)
        self.ended.add(topic)
        latest = self.backfill_ms.pop(topic, None)
        if latest is not None and (self.history_ms is None or latest > self.history_ms):
            self.history_ms = latest

    def value(self) -> int | None:
        """The time up to which idle transitions are announced (epoch ms): the latest event
        time seen, held at a backfill's progress while one runs; None before any event, or
        while a backfilled topic has delivered nothing yet."""
        live = self._live()
        if self.backfilling:
            waiting = [t for t in self.backfilling if t not in self.backfill_ms]
            if any(t not in self.read_to_end for t in waiting):
                return None  # a topic's place in the backfill is not known yet
            known = [self.backfill_ms[t] for t in self.backfilling if t in self.backfill_ms]
            if known:
                progress = min(known)
                return progress if live is None else min(progress, live)
        history = self.history_ms  # the later of the two known
        return live if history is None or (live is not None and live > history) else history

    def _live(self) -> int | None:
        """The live part: the least latest time of the topics with records still to read."""
        least = None
        read_to_end = self.read_to_end
        for topic, ts in self.live_by_topic.items():
            if topic not in read_to_end and (least is None or ts < least):
                least = ts
        return self.live_ms if least is None else least
