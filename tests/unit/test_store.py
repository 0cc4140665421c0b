"""The in-memory user store, its local RocksDB copy and the offsets safe to commit."""

from __future__ import annotations

from pathlib import Path

from aiokafka.structs import TopicPartition

from agents.scoring import OffsetTracker
from pipeline.domain.stages import Stage
from pipeline.domain.state import UserState
from pipeline.local_state import LocalPartition, open_partition
from pipeline.store import UserStore, decode_user, encode_user


def user(user_id: str, orders: int = 0) -> UserState:
    return UserState(user_id, order_count=orders, stage=Stage.NEW, seen_ids={7: 1, -3: 2})


def test_changed_users_are_taken_once_per_partition() -> None:
    store = UserStore()
    store.put(user("a"), 0)
    store.put(user("b"), 1)
    store.load(user("c"), 1)  # read back from storage: not changed
    assert store.dirty_partitions() == [0, 1]
    assert [u.user_id for u in store.take_dirty(1)] == ["b"]
    assert store.take_dirty(1) == []
    assert sorted(u.user_id for u in store.users_of(1)) == ["b", "c"]
    assert store.partitions() == [0, 1]


def test_dropping_a_partition_forgets_its_users_and_their_changes() -> None:
    store = UserStore()
    store.put(user("a"), 0)
    store.put(user("b"), 1)
    store.drop_partition(0)
    assert "a" not in store
    assert store.get("a") is None
    assert store.dirty_partitions() == [1]
    assert len(store) == 1


def test_a_user_round_trips_through_its_encoding() -> None:
    original = user("a", orders=3)
    decoded, partition = decode_user(encode_user(original, 2))
    assert partition == 2
    assert decoded == original
    assert decode_user({"user_id": "z", "stage": "silent"})[0].stage == Stage.SILENT


def test_the_local_copy_keeps_users_and_offset_together(tmp_path: Path) -> None:
    local = open_partition("rocksdb://", tmp_path, 3)
    assert local.changelog_offset == -1
    local.write([(b"a", encode_user(user("a"), 3)), (b"b", b"{}")], 41)
    local.write([(b"b", None)], 42)
    local.close()
    reopened = LocalPartition(tmp_path / "partition-3")
    assert reopened.changelog_offset == 42
    assert [key for key, _ in reopened.users()] == [b"a"]
    reopened.reset()
    assert reopened.changelog_offset == -1
    assert list(reopened.users()) == []
    reopened.close()


def test_the_memory_store_keeps_nothing_locally(tmp_path: Path) -> None:
    local = open_partition("memory://", tmp_path, 0)
    local.write([(b"a", b"{}")], 5)
    assert local.changelog_offset == -1
    assert list(local.users()) == []
    assert not any(tmp_path.iterdir())


def test_offsets_are_committed_only_up_to_the_first_event_not_applied() -> None:
    live, order, chat = (
        TopicPartition("live", 0),
        TopicPartition("order", 0),
        TopicPartition("chat", 0),
    )
    tracker = OffsetTracker()
    # live read up to 4, of which 1, 3 and 4 are still held (2 applied before 1); order read
    # to 10 and applied; chat read to nothing past what was committed at assignment.
    tracker.committed({chat: 7})
    read_to = {live: 5, order: 11, chat: 7}
    assert tracker.to_commit(read_to, [(live, 3), (live, 1), (live, 4)]) == {live: 1, order: 11}
    tracker.committed(tracker.to_commit(read_to, [(live, 3), (live, 1), (live, 4)]))
    assert tracker.to_commit(read_to, [(live, 3), (live, 1), (live, 4)]) == {}
    assert tracker.to_commit(read_to, [(live, 4), (live, 3)]) == {live: 3}
    assert tracker.committed({live: 5}) == 4  # records moved past since the last commit
    assert tracker.to_commit(read_to, []) == {}
    # A forgotten topic-partition (revoked) starts again from what its next owner reads.
    tracker.forget(live)
    assert tracker.to_commit({live: 5}, []) == {live: 5}


def test_a_checkpoint_commits_up_to_the_first_held_event_of_each_topic_partition() -> None:
    """The engine's snapshot: every read record is rejected, held or applied, so the first
    held offset of a topic-partition is where its commit stops."""
    from agents.scoring import ScoringEngine
    from pipeline.domain.watermark import MergeBuffer
    from pipeline.scorer import Scorer
    from pipeline.settings import Settings
    from sinks.base import BatchingSink
    from sinks.memory import MemoryClient

    settings = Settings(clickhouse_url="memory://")

    async def flush() -> bool:
        return True

    engine = ScoringEngine(
        settings, Scorer(settings, UserStore()), BatchingSink(MemoryClient()), flush
    )

    class Record:
        def __init__(self, offset: int) -> None:
            self.offset = offset

    live, order = TopicPartition("live", 2), TopicPartition("order", 2)
    engine.read_to = {live: 40, order: 9}
    buffer = engine.buffers[2] = MergeBuffer()
    buffer.push(1_000, (None, live, Record(31)), 0.0)
    buffer.push(500, (None, live, Record(35)), 0.0)
    held = [(tp, record.offset) for b in engine.buffers.values() for _, tp, record in b.items()]
    assert sorted(held) == [(live, 31), (live, 35)]
    assert engine.offsets.to_commit(engine.read_to, held) == {live: 31, order: 9}


def test_a_copy_locked_by_another_worker_falls_back_to_the_changelog(tmp_path: Path) -> None:
    holder = open_partition("rocksdb://", tmp_path, 1)
    holder.write([(b"a", b"{}")], 7)
    other = open_partition("rocksdb://", tmp_path, 1)  # same directory, lock held
    assert other.path is None
    assert other.changelog_offset == -1
    holder.close()


def test_the_loop_wakes_when_the_oldest_held_event_may_go() -> None:
    """With events held, a fetch waits no longer than the rest of the oldest one's caught-up
    hold and two fetches of a quiet topic (one of them answered after the hold lets it go);
    with none held, the usual round."""
    import time

    from agents.scoring import FETCH_WAIT_MS, ScoringEngine
    from pipeline.domain.watermark import MergeBuffer
    from pipeline.scorer import Scorer
    from pipeline.settings import Settings
    from sinks.base import BatchingSink
    from sinks.memory import MemoryClient

    settings = Settings(clickhouse_url="memory://", merge_caught_up_hold_seconds=0.5)

    async def flush() -> bool:
        return True

    engine = ScoringEngine(
        settings, Scorer(settings, UserStore()), BatchingSink(MemoryClient()), flush
    )
    assert engine.fetch_timeout_ms() == 100
    buffer = engine.buffers[0] = MergeBuffer()
    now = time.monotonic()
    buffer.push(1, "later", now - 0.1)
    buffer.push(2, "older", now - 0.45)
    assert 2 * FETCH_WAIT_MS < engine.fetch_timeout_ms() <= 50 + 2 * FETCH_WAIT_MS
    engine.buffers[1] = MergeBuffer()
    engine.buffers[1].push(3, "overdue", now - 2.0)  # its hold is over: the next fetches
    assert engine.fetch_timeout_ms() == 2 * FETCH_WAIT_MS
    del engine.buffers[0], engine.buffers[1]
    assert engine.fetch_timeout_ms() == 100


def test_a_paused_partition_counts_as_unread_whatever_its_last_high_watermark() -> None:
    from agents.scoring import unread

    assert unread(10, 12, paused=False) is True
    assert unread(12, 12, paused=False) is False
    assert unread(12, 12, paused=True) is True  # not fetched: its high watermark is stale
    assert unread(None, 12, paused=False) is None
    assert unread(12, None, paused=False) is None
