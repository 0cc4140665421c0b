"""Random histories of many users, delivered in random orders across topics and partitions,
give the documents and stage histories of the offline reference scorer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2

from pipeline.reference import Reference, differences, reference_scores
from pipeline.scorer import Scorer
from pipeline.settings import Settings
from pipeline.store import UserStore
from schemas.validation import Rejection

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
DAY = 86_400_000
START = int(NOW.timestamp() * 1000) - 150 * DAY
PARTITIONS = 3
SETTINGS = Settings(clickhouse_url="memory://", topic_partitions=PARTITIONS)
TOPIC = {"live": SETTINGS.topic_live, "order": SETTINGS.topic_order,
         "touch": SETTINGS.topic_touch, "chat": SETTINGS.topic_chat}  # fmt: skip


def partition_of(user_id: str) -> int:
    return (murmur2(user_id.encode()) & 0x7FFFFFFF) % PARTITIONS


@st.composite
def histories(draw: st.DrawFn, pay_once: bool = False) -> list[tuple[str, bytes]]:
    """Events of up to six users over 150 days (inside the order ledger's horizon): likes,
    chat messages, touches and orders (some paid twice unless `pay_once`, some refunded)."""
    out: list[tuple[str, bytes]] = []
    paid: set[str] = set()
    for n in range(draw(st.integers(1, 6))):
        user = f"u{n}"
        for i in range(draw(st.integers(1, 25))):
            ts = START + draw(st.integers(0, 150 * DAY))
            base: dict[str, Any] = {"event_id": f"{user}-{i}", "user_id": user, "ts": ts}
            kind = draw(st.sampled_from(["like", "message", "touch_sent", "order_paid",
                                         "order_refunded"]))  # fmt: skip
            if kind == "like":
                event = {**base, "type": kind, "room_id": "r", "session_id": "s"}
                out.append((TOPIC["live"], orjson.dumps(event)))
            elif kind == "message":
                out.append((TOPIC["chat"], orjson.dumps({**base, "type": kind, "text": "hi"})))
            elif kind == "touch_sent":
                event = {**base, "type": kind, "campaign_id": "c", "channel": "wecom"}
                out.append((TOPIC["touch"], orjson.dumps(event)))
            else:
                order = draw(st.sampled_from(["o1", "o2", "o3"]))
                if pay_once and kind == "order_paid":
                    if f"{user}-{order}" in paid:
                        continue
                    paid.add(f"{user}-{order}")
                event = {**base, "type": kind, "order_id": f"{user}-{order}",
                         "amount": draw(st.sampled_from(["0", "10.00", "99.90"])),
                         "currency": "CNY"}  # fmt: skip
                out.append((TOPIC["order"], orjson.dumps(event)))
    return out


def stage_histories(scorer: Scorer, users: list[str]) -> dict[str, list[Any]]:
    out = {}
    for user_id in users:
        state = scorer.store.get(user_id)
        if state is not None and state.history:
            out[user_id] = [(f.value if f else None, t.value, at) for f, t, at in state.history]
    return out


def assert_equals_reference(scorer: Scorer, references: dict[str, Reference]) -> None:
    """Every user's document and settled stage history are the reference's."""
    for user_id, ref in references.items():
        state = scorer.store.get(user_id)
        assert state is not None
        document = orjson.loads(scorer.document(state, NOW).model_dump_json())
        assert differences(document, ref) == [], user_id
    expected = {
        user_id: [(f.value if f else None, t.value, at) for f, t, at in ref.transitions]
        for user_id, ref in references.items()
        if ref.transitions
    }
    assert stage_histories(scorer, sorted(references)) == expected


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False), st.booleans())
def test_any_arrival_order_gives_the_reference(
    events: list[tuple[str, bytes]], rnd: Any, backfill: bool
) -> None:
    # Producers send each user's events in event-time order; a backfill sends each topic in
    # event-time order. The consumer then reads topics and partitions in any interleaving.
    ordered = sorted(events, key=lambda m: orjson.loads(m[1])["ts"])
    by_topic: dict[str, list[tuple[str, bytes]]] = {}
    for message in ordered:
        by_topic.setdefault(message[0], []).append(message)
    arrival: list[tuple[str, bytes]] = []
    while any(by_topic.values()):
        topic = rnd.choice([t for t, q in by_topic.items() if q])
        take = rnd.randint(1, 5)
        arrival += by_topic[topic][:take]
        del by_topic[topic][:take]
    scorer = Scorer(SETTINGS, UserStore())
    accepted: list[tuple[str, bytes]] = []
    for topic, raw in arrival:
        user = orjson.loads(raw)["user_id"]
        try:
            scorer.score(topic, raw, now=NOW, partition=partition_of(user), backfill=backfill)
        except Rejection:
            continue  # a refund before its payment arrived, an order paid twice differently
        accepted.append((topic, raw))
    for partition in range(PARTITIONS):
        for topic in SETTINGS.input_topics:  # everything read: as the worker sees it then
            scorer.watermark(partition).end_backfill(topic)
            scorer.watermark(partition).read_up(topic, at_end=True)
        scorer.sweep(partition, now=NOW, documents=False)
    references = reference_scores(accepted, SETTINGS, partition_of, now=NOW)
    assert_equals_reference(scorer, references)


def test_a_resend_on_a_topic_read_far_behind_the_others_is_still_a_duplicate() -> None:
    # Found by the backfill read fifty records at a time: one user's live topic was read a
    # month ahead of the chat topic, the chat message's id had been dropped as "older than
    # the dedup horizon before the user's latest event", and its resend counted twice
    # (767 interactions where the reference has 766). Ids now age against the partition's
    # watermark, which the slower topic holds back.
    scorer = Scorer(SETTINGS, UserStore())

    def score(topic: str, event: dict[str, Any]) -> Any:
        return scorer.score(topic, orjson.dumps({"user_id": "u1", **event}), now=NOW)

    chat = {"event_id": "c1", "type": "message", "ts": START + DAY, "text": "hi"}
    score(TOPIC["chat"], chat)
    for i in range(300):  # the live topic, read ahead: days 10 to 40
        like = {"event_id": f"l{i}", "type": "like", "ts": START + 10 * DAY + i * DAY // 10,
                "room_id": "r", "session_id": "s"}  # fmt: skip
        score(TOPIC["live"], like)
    assert score(TOPIC["chat"], chat).duplicate
    state = scorer.store.get("u1")
    assert state is not None
    assert state.interactions == 301


@settings(max_examples=60, deadline=None)
@given(histories(pay_once=True), st.randoms(use_true_random=False))
def test_any_arrival_order_within_the_lateness_gives_the_reference(
    events: list[tuple[str, bytes]], rnd: Any
) -> None:
    """Producers that do not keep event-time order (a refund service and a payment service,
    a backfill next to live traffic): each event may come up to the lateness bound after
    later ones, on its own topic too. A refund that comes before its payment waits for it.

    The reference is given every event, refused ones included. Each order is paid once: a
    payment repeated under another event id keeps the time of the one that came first (the
    one order dependence left, README). The partitions are settled at the reference's clock,
    the latest event time of each, refused events included (the worker's watermark counts the
    events it applied)."""
    lateness = int(SETTINGS.lateness_seconds * 1000)
    arrival = sorted(events, key=lambda m: orjson.loads(m[1])["ts"] + rnd.randint(0, lateness))
    scorer = Scorer(SETTINGS, UserStore())
    for topic, raw in arrival:
        user = orjson.loads(raw)["user_id"]
        try:
            scorer.score(topic, raw, now=NOW, partition=partition_of(user))
        except Rejection:
            continue  # what the reference refuses too: it is given every event
    clocks: dict[int, int] = {}
    for _, raw in events:
        event = orjson.loads(raw)
        part = partition_of(event["user_id"])
        clocks[part] = max(clocks.get(part, 0), event["ts"])
    for partition in range(PARTITIONS):
        for topic in SETTINGS.input_topics:
            scorer.watermark(partition).read_up(topic, at_end=True)
        scorer.sweep(partition, now=NOW, documents=False, clock_ms=clocks.get(partition))
    references = reference_scores(events, SETTINGS, partition_of, now=NOW)
    assert_equals_reference(scorer, references)
