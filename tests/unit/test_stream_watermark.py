"""The partition watermark: live records move it, a backfill holds it at its progress."""

from __future__ import annotations

from pipeline.stream.watermark import PartitionWatermark


def test_live_events_move_it_to_the_latest_time_seen_once_read_up() -> None:
    mark = PartitionWatermark()
    assert mark.value() is None
    mark.observe("live", 500)
    mark.observe("order", 300)
    mark.read_up("live", at_end=True)
    mark.read_up("order", at_end=True)
    assert mark.value() == 500
    mark.observe("order", 200)  # late: the watermark does not go back
    assert mark.value() == 500


def test_a_backfill_holds_it_at_its_slowest_topic_until_each_topic_ends() -> None:
    mark = PartitionWatermark()
    mark.observe("live", 10_000)  # live traffic of the present
    mark.observe("live", 100, backfill=True)
    mark.observe("order", 80, backfill=True)
    assert mark.value() == 80
    mark.observe("order", 400, backfill=True)
    assert mark.value() == 100
    mark.end_backfill("live")
    assert mark.value() == 400
    mark.end_backfill("order")
    assert mark.value() == 10_000  # back to the present


def test_history_alone_moves_it_once_its_backfill_ended() -> None:
    mark = PartitionWatermark()
    mark.observe("chat", 700, backfill=True)
    assert mark.value() == 700
    mark.end_backfill("chat")
    assert mark.value() == 700
    mark.end_backfill("touch")  # an end marker of a topic with no events here
    assert mark.value() == 700


def test_an_end_marker_read_before_the_backfill_reached_the_partition_still_counts() -> None:
    mark = PartitionWatermark(("live", "touch"))
    mark.end_backfill("touch")  # touch had nothing to backfill here: its marker comes first
    mark.observe("live", 100, backfill=True)
    assert mark.value() == 100  # touch does not hold it
    mark.end_backfill("live")
    assert mark.value() == 100


def test_a_topic_with_no_backfill_record_yet_holds_it_until_read_to_its_end() -> None:
    mark = PartitionWatermark(("live", "chat"))
    mark.observe("live", 100, backfill=True)
    assert mark.value() is None  # chat's place in the backfill is unknown
    mark.read_up("chat", at_end=True)
    assert mark.value() == 100


def test_a_topic_with_records_still_to_read_holds_the_live_watermark() -> None:
    mark = PartitionWatermark(("live", "order"))
    mark.observe("live", 900)
    mark.observe("order", 300)
    assert mark.value() == 300  # order is behind and has more to read
    mark.read_up("order", at_end=True)
    assert mark.value() == 900  # read to its end: it does not hold
    mark.read_up("order", at_end=False)
    mark.observe("order", 950)
    assert mark.value() == 900
