"""A checkpoint's snapshot of the user store, encoded copy on write: users changed after the
snapshot and before they are encoded are written as they were at the snapshot, whatever the
order of changes and encoding."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.partitions import encode_snapshot
from pipeline.domain.state import UserState
from pipeline.store import UserStore, decode_user, encode_user

IDS = [f"u{i}" for i in range(6)]


def changed(store: UserStore, user_id: str, partition: int) -> None:
    """What the scorer does with an event: get the user, change it, put it back."""
    user = store.get(user_id) or UserState(user_id)
    user.order_count += 1
    user.recent_interactions_ms.append(user.order_count)
    store.put(user, partition)


def records(changes: dict[int, list[tuple[bytes, bytes | None]]]) -> dict[bytes, bytes | None]:
    return {key: value for part in changes.values() for key, value in part}


def test_a_user_changed_before_it_is_encoded_is_written_as_it_was() -> None:
    store = UserStore()
    changed(store, "a", 0)
    changed(store, "b", 1)
    store.freeze()
    expected = encode_user(store._users["a"], 0)  # as it is at the snapshot
    changed(store, "a", 0)  # the loop goes on before "a" is encoded
    snapshot = records(store.take_frozen())
    assert snapshot[b"a"] == expected
    assert decode_user(snapshot[b"a"])[0].order_count == 1
    # The later change goes with the next snapshot.
    store.freeze()
    later = records(store.take_frozen())
    assert list(later) == [b"a"]
    assert decode_user(later[b"a"])[0].order_count == 2


def test_a_user_erased_after_the_snapshot_is_written_then_its_tombstone() -> None:
    store = UserStore()
    changed(store, "a", 0)
    store.freeze()
    store.get("a")
    store.remove("a")
    assert decode_user(records(store.take_frozen())[b"a"] or b"")[0].order_count == 1
    store.freeze()
    assert records(store.take_frozen()) == {b"a": None}


def test_reading_every_user_of_a_partition_encodes_the_frozen_ones_first() -> None:
    store = UserStore()
    changed(store, "a", 0)
    store.freeze()
    for user in store.users_of(0):  # a reader may change what it reads
        user.order_count = 99
    assert decode_user(records(store.take_frozen())[b"a"] or b"")[0].order_count == 1


def test_a_snapshot_is_taken_before_the_next() -> None:
    store = UserStore()
    changed(store, "a", 0)
    store.freeze()
    with pytest.raises(RuntimeError, match="previous snapshot"):
        store.freeze()
    store.take_frozen()
    store.freeze()  # nothing changed: an empty snapshot
    assert store.take_frozen() == {}


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(st.sampled_from(IDS), min_size=1, max_size=20),
    during=st.lists(st.sampled_from(IDS), max_size=20),
    chunk=st.integers(min_value=1, max_value=4),
)
def test_any_interleaving_of_changes_and_encoding_gives_the_snapshot(
    before: list[str], during: list[str], chunk: int
) -> None:
    """Changes applied between the chunks of `encode_snapshot` (as the engine's loop does
    while a checkpoint is written) never reach the snapshot's records."""
    store = UserStore()
    for user_id in before:
        changed(store, user_id, int(user_id[1:]) % 2)
    store.freeze()
    expected = {
        user_id.encode(): encode_user(user, partition)
        for user_id, (user, partition) in store._frozen.items()
    }

    async def run() -> dict[int, list[tuple[bytes, bytes | None]]]:
        async def loop() -> None:
            for user_id in during:
                changed(store, user_id, int(user_id[1:]) % 2)
                await asyncio.sleep(0)

        changes, _ = await asyncio.gather(encode_snapshot(store, chunk), loop())
        return changes

    assert records(asyncio.run(run())) == expected
    # What changed meanwhile is the next snapshot, as it is now.
    store.freeze()
    now = {u: encode_user(store._users[u], int(u[1:]) % 2) for u in set(during)}
    assert records(store.take_frozen()) == {u.encode(): v for u, v in now.items()}
