"""The per-partition input offsets and the encoding of a checkpoint's changed users."""

from __future__ import annotations

from aiokafka.structs import TopicPartition

from agents.partitions import PartitionOffsets, take_changes
from pipeline.domain.state import UserState
from pipeline.store import UserStore, decode_user


def test_offsets_to_commit_are_those_read_that_moved() -> None:
    live, order, chat = (
        TopicPartition("live", 0),
        TopicPartition("order", 0),
        TopicPartition("chat", 0),
    )
    offsets = PartitionOffsets()
    offsets.resume(chat, 7)  # where reading started at assignment
    offsets.read(live, 5)
    offsets.read(order, 11)
    assert offsets.to_commit() == {live: 5, order: 11}
    assert offsets.committed(offsets.to_commit()) == 0  # nothing known before
    assert offsets.to_commit() == {}
    offsets.read(live, 9)
    assert offsets.committed({live: 9}) == 4  # records moved past since the last commit
    # A forgotten (revoked) topic-partition is neither read nor committed any more.
    offsets.forget(live)
    assert live not in offsets.read_to
    assert offsets.to_commit() == {}
    offsets.resume(live, 9)
    assert offsets.to_commit() == {}


def test_changes_are_each_changed_user_once_per_partition() -> None:
    store = UserStore()
    store.put(UserState("a"), 0)
    store.put(UserState("a"), 0)
    store.put(UserState("b"), 1)
    store.load(UserState("c"), 1)  # read back, not changed
    changes = take_changes(store)
    assert {p: [key for key, _ in records] for p, records in changes.items()} == {
        0: [b"a"],
        1: [b"b"],
    }
    user, partition = decode_user(changes[1][0][1])
    assert (user.user_id, partition) == ("b", 1)
    assert take_changes(store) == {}
