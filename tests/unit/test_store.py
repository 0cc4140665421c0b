"""The in-memory user store and its local RocksDB copy."""

from __future__ import annotations

from pathlib import Path

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


def test_a_copy_locked_by_another_worker_falls_back_to_the_changelog(tmp_path: Path) -> None:
    holder = open_partition("rocksdb://", tmp_path, 1)
    holder.write([(b"a", b"{}")], 7)
    other = open_partition("rocksdb://", tmp_path, 1)  # same directory, lock held
    assert other.path is None
    assert other.changelog_offset == -1
    holder.close()


def test_an_erased_user_leaves_no_trace_in_the_local_files(tmp_path: Path) -> None:
    local = LocalPartition(tmp_path / "p0")
    local.write([(f"u{n:03d}".encode(), b"x" * 100) for n in range(50)], 10)
    local.write([(b"m-secret-user", b"secret-state")], 11)
    local.write([(b"m-secret-user", None)], 12)
    assert local.changelog_offset == 12
    assert len(list(local.users())) == 50
    for path in (tmp_path / "p0").iterdir():
        assert b"m-secret-user" not in path.read_bytes(), path.name
    local.close()
