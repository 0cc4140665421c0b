"""The partition clock across topics read at different speeds, and the merge buffer."""

from __future__ import annotations

from pipeline.domain.watermark import MergeBuffer, PartitionClock


def test_topics_with_records_waiting_hold_the_clock_at_the_least_of_them() -> None:
    clock = PartitionClock()
    clock.observe("live", 100, more_waiting=True)
    clock.observe("order", 500, more_waiting=True)
    assert clock.value() == 100
    clock.observe("live", 600, more_waiting=False)  # live read to its end
    assert clock.value() == 500


def test_when_every_topic_is_read_to_its_end_the_clock_is_the_latest_time() -> None:
    clock = PartitionClock()
    clock.observe("live", 100, more_waiting=False)
    clock.observe("order", 500, more_waiting=False)
    assert clock.value() == 500


def test_expected_topics_hold_until_seen_resolved_or_given_up() -> None:
    clock = PartitionClock(("live", "order", "chat"))
    clock.observe("live", 100, more_waiting=False)
    assert clock.value() is None
    clock.resolve("order")
    assert clock.value() is None  # chat is still unknown
    assert clock.give_up_unknown() == 100


def test_a_topic_just_read_to_its_end_holds_for_the_hold_then_lets_go() -> None:
    clock = PartitionClock(caught_up_hold_s=0.5)
    clock.observe("live", 100, more_waiting=False, now=10.0)
    clock.observe("order", 900, more_waiting=True, now=10.0)
    assert clock.value(now=10.2) == 100  # live's next record may be landing right now
    assert clock.value(now=10.6) == 900  # quiet for longer than the hold: it lets go
    clock.observe("live", 200, more_waiting=False, now=11.0)  # a new record: holds again
    assert clock.value(now=11.1) == 200


def test_a_high_watermark_past_what_was_read_makes_a_topic_hold_again() -> None:
    clock = PartitionClock(caught_up_hold_s=0.5)
    clock.observe("live", 100, more_waiting=False, now=0.0)
    clock.observe("order", 900, more_waiting=False, now=0.0)
    assert clock.value(now=5.0) == 900
    clock.set_waiting("live", True, now=5.0)  # more live records landed
    assert clock.value(now=5.0) == 100
    clock.set_waiting("live", False, now=6.0)
    assert clock.value(now=6.2) == 100  # just read to its end: held
    assert clock.value(now=6.6) == 900
    clock.set_waiting("touch", True, now=6.6)  # never seen: no effect
    assert clock.value(now=6.6) == 900


def test_the_merge_buffer_releases_in_event_time_order_up_to_the_clock() -> None:
    buffer = MergeBuffer()
    for ts, item in [(300, "c"), (100, "a"), (200, "b"), (100, "a2")]:
        buffer.push(ts, item, arrived=1.0)
    up_to_150 = buffer.release_while(lambda ts, _arrival: ts <= 150)
    assert up_to_150 == [(100, "a"), (100, "a2")]  # ties keep their arrival order
    assert buffer.release_while(lambda _ts, _arrival: False) == []
    assert len(buffer) == 2
    assert buffer.waited_since(2.0)
    everything = buffer.release_while(lambda ts, _arrival: ts <= 150, hold_until=2.0)
    assert everything == [(200, "b"), (300, "c")]  # waited too long: all go
    assert len(buffer) == 0


def test_a_quiet_topic_holds_a_newly_arrived_record_for_the_hold() -> None:
    clock = PartitionClock(caught_up_hold_s=0.5)
    clock.observe("chat", 100, more_waiting=False, now=0.0)
    clock.observe("live", 900, more_waiting=False, now=20.0)  # after a long quiet spell
    assert clock.value(now=20.0) == 900  # nothing asked: chat has been quiet for long
    assert clock.value(now=20.1, since=20.0) == 100  # chat's records of now may be landing
    assert clock.value(now=20.6, since=20.0) == 900


def test_a_quiet_topic_lets_go_only_after_a_fetch_answered_after_the_hold() -> None:
    """Quiet is what a fetch saw: a worker that could not fetch during the hold (its loop
    busy, the process waiting for a core, the topic paused) saw nothing, however long the
    wall clock says it waited."""
    clock = PartitionClock(caught_up_hold_s=0.5)
    clock.observe("chat", 100, more_waiting=False, now=0.0)
    clock.polled("chat", 0.0)
    clock.observe("live", 900, more_waiting=False, now=20.0)
    clock.polled("chat", 19.9)  # the last fetch of chat before the live record came
    assert clock.value(now=25.0, since=20.0) == 100  # no fetch since: still held
    clock.polled("chat", 20.3)  # a fetch inside the hold found nothing new
    assert clock.value(now=25.0, since=20.0) == 100
    clock.polled("chat", 20.52)  # one answered after the hold did
    assert clock.value(now=25.0, since=20.0) == 900
    # A later record asks anew: the fetches before its arrival say nothing about it.
    assert clock.value(now=25.0, since=24.8) == 100


def test_a_topic_caught_up_but_unseen_holds_everything_for_the_hold() -> None:
    clock = PartitionClock(("live", "chat"), caught_up_hold_s=0.5)
    clock.resolve("chat", now=0.0)  # nothing to read when the partition came here
    clock.observe("live", 900, more_waiting=False, now=10.0)
    assert clock.value(now=10.1, since=10.0) is None
    assert clock.value(now=10.6, since=10.0) == 900
    clock.set_waiting("chat", True, now=11.0)  # then its high watermark moved
    assert clock.value(now=30.0, since=11.0) is None
    clock.observe("chat", 800, more_waiting=False, now=31.0)
    assert clock.value(now=31.0, since=31.0) == 800


def test_release_while_stops_at_the_first_event_not_ready() -> None:
    buffer = MergeBuffer()
    for ts, arrival in [(100, 1.0), (200, 2.0), (300, 3.0)]:
        buffer.push(ts, f"e{ts}", arrival)
    assert buffer.release_while(lambda ts, arrival: arrival < 2.5) == [
        (100, "e100"),
        (200, "e200"),
    ]
    assert buffer.release_while(lambda ts, arrival: False, hold_until=3.5) == [(300, "e300")]
    assert len(buffer) == 0


def test_the_oldest_arrival_follows_what_is_still_held() -> None:
    buffer = MergeBuffer()
    assert buffer.oldest_arrival() is None
    assert not buffer.waited_since(100.0)
    buffer.push(5, "late-arrival-early-event", arrived=2.0)
    buffer.push(9, "first-arrival", arrived=1.0)
    buffer.push(7, "first-arrival-too", arrived=1.0)
    assert buffer.oldest_arrival() == 1.0
    assert buffer.waited_since(1.5)
    assert not buffer.waited_since(1.0)
    # Up to 7: the events of arrival 2.0 and one of 1.0 go; one of 1.0 is still held.
    assert [item for _, item in buffer.release_while(lambda ts, _: ts <= 7)] == [
        "late-arrival-early-event",
        "first-arrival-too",
    ]
    assert buffer.oldest_arrival() == 1.0
    assert buffer.release_while(lambda ts, _: ts <= 9) == [(9, "first-arrival")]
    assert buffer.oldest_arrival() is None
    # A forced release empties it, and forgets the arrivals with it.
    buffer.push(3, "a", arrived=4.0)
    buffer.push(1, "b", arrived=5.0)
    assert buffer.release_while(lambda ts, _: False, hold_until=4.5) == [(1, "b"), (3, "a")]
    assert buffer.oldest_arrival() is None
    assert len(buffer) == 0
