"""Per-user state of the partitions this process owns, in memory, with the users changed since
the last checkpoint; pure (the worker persists it to the changelog and RocksDB)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from pipeline.domain.state import UserState


def encode_user(user: UserState, partition: int) -> bytes:
    data = user.to_dict()
    data["partition"] = partition
    return orjson.dumps(data)


def decode_user(raw: bytes | dict[str, Any]) -> tuple[UserState, int | None]:
    """A stored user and the partition it was written for."""
    data: dict[str, Any] = dict(raw) if isinstance(raw, dict) else orjson.loads(raw)
    partition = data.pop("partition", None)
    return UserState.from_dict(data), partition


class UserStore:
    """Users by id, each belonging to one input partition; `put` marks a user changed.

    Users are kept as objects between events (no encoding per event): the worker encodes each
    changed user once per checkpoint, however many events it had. A checkpoint's snapshot
    (`freeze`) takes the changed users without encoding them; they are encoded while events go
    on being applied (`encode_frozen`), and one that is about to change again (`get`) is
    encoded first: copy on write, so the checkpoint has every user as it was at the snapshot.
    """

    def __init__(self) -> None:
        self._users: dict[str, UserState] = {}
        self._partition_of: dict[str, int] = {}
        self._members: dict[int, set[str]] = {}
        self._dirty: dict[int, set[str]] = {}
        self._removed: dict[int, set[str]] = {}  # erased since the last checkpoint
        # The snapshot being encoded: users still to encode, and the records encoded so far.
        self._frozen: dict[str, tuple[UserState, int]] = {}
        self._encoded: dict[int, list[tuple[bytes, bytes | None]]] = {}

    def __len__(self) -> int:
        return len(self._users)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._users

    def get(self, user_id: str) -> UserState | None:
        """The user, to read or to change (a user the snapshot has yet to encode is encoded
        first, as it is now)."""
        if user_id in self._frozen:
            self._encode(user_id)
        return self._users.get(user_id)

    def partition_of(self, user_id: str) -> int | None:
        return self._partition_of.get(user_id)

    def put(self, user: UserState, partition: int) -> None:
        """Keep the user (changed) in the partition."""
        self.load(user, partition)
        self._dirty.setdefault(partition, set()).add(user.user_id)

    def load(self, user: UserState, partition: int) -> None:
        """Keep a user read back from storage (not changed)."""
        user_id = user.user_id
        previous = self._partition_of.get(user_id)
        if previous is not None and previous != partition:
            self._members[previous].discard(user_id)
        self._users[user_id] = user
        self._partition_of[user_id] = partition
        self._members.setdefault(partition, set()).add(user_id)

    def remove(self, user_id: str) -> int | None:
        """Forget a user (erasure); its changelog tombstone goes with the next checkpoint.
        Returns the partition it belonged to, None when it was not here."""
        partition = self.unload(user_id)
        if partition is not None:
            self._dirty.get(partition, set()).discard(user_id)
            self._removed.setdefault(partition, set()).add(user_id)
        return partition

    def unload(self, user_id: str) -> int | None:
        """Forget a user read back as deleted (a changelog tombstone); not a change."""
        partition = self._partition_of.pop(user_id, None)
        if partition is not None:
            self._users.pop(user_id, None)
            self._members[partition].discard(user_id)
        return partition

    def mark_removed(self, user_id: str, partition: int) -> None:
        """Write the user's tombstone again with the next checkpoint (unless it came back)."""
        if user_id not in self._partition_of:
            self._removed.setdefault(partition, set()).add(user_id)

    def take_removed(self, partition: int) -> list[str]:
        """The users of the partition removed since the last call and not back since."""
        ids = self._removed.pop(partition, set())
        return sorted(i for i in ids if self._partition_of.get(i) != partition)

    def users_of(self, partition: int) -> Iterator[UserState]:
        frozen = self._frozen
        for user_id in list(self._members.get(partition, ())):
            if user_id in frozen:
                self._encode(user_id)
            yield self._users[user_id]

    def partitions(self) -> list[int]:
        return sorted(p for p, members in self._members.items() if members)

    def dirty_partitions(self) -> list[int]:
        """Partitions with users changed or removed since the last checkpoint."""
        changed = {p for p, ids in self._dirty.items() if ids}
        return sorted(changed | {p for p, ids in self._removed.items() if ids})

    def mark_dirty(self, user_id: str, partition: int) -> None:
        """Write the user again with the next checkpoint (its last one did not complete)."""
        if self._partition_of.get(user_id) == partition:
            self._dirty.setdefault(partition, set()).add(user_id)

    def keep(self, changes: Mapping[int, Sequence[tuple[bytes, bytes | None]]]) -> None:
        """A snapshot's records could not be made durable: their users (tombstones: their
        erasures) go with the next snapshot, as they are then."""
        for partition, records in changes.items():
            for key, value in records:
                if value is None:
                    self.mark_removed(key.decode(), partition)
                else:
                    self.mark_dirty(key.decode(), partition)

    def take_dirty(self, partition: int) -> list[UserState]:
        """The users of the partition changed since the last call, once each."""
        ids = self._dirty.pop(partition, set())
        return [self._users[user_id] for user_id in sorted(ids) if user_id in self._users]

    def drop_partition(self, partition: int) -> None:
        """The partition moved to another process: forget its users (changed or not)."""
        for user_id in self._members.pop(partition, set()):
            self._users.pop(user_id, None)
            self._partition_of.pop(user_id, None)
        self._dirty.pop(partition, None)
        self._removed.pop(partition, None)

    # -- a checkpoint's snapshot, encoded copy on write ----------------------------------------

    def freeze(self) -> None:
        """Snapshot the users changed and erased since the last snapshot: their changelog
        records (`take_frozen`) are as they are now, however they change afterwards. The
        previous snapshot must have been taken."""
        if self._frozen or self._encoded:
            raise RuntimeError("the previous snapshot has not been taken")
        for partition in self.dirty_partitions():
            records = self._encoded.setdefault(partition, [])
            records.extend((user_id.encode(), None) for user_id in self.take_removed(partition))
            for user in self.take_dirty(partition):
                self._frozen[user.user_id] = (user, partition)

    def _encode(self, user_id: str) -> None:
        user, partition = self._frozen.pop(user_id)
        self._encoded.setdefault(partition, []).append(
            (user_id.encode(), encode_user(user, partition))
        )

    def encode_frozen(self, limit: int) -> bool:
        """Encode up to `limit` users of the snapshot; returns whether any are left."""
        for user_id in list(itertools.islice(self._frozen, limit)):
            self._encode(user_id)
        return bool(self._frozen)

    def take_frozen(self) -> dict[int, list[tuple[bytes, bytes | None]]]:
        """The snapshot's changelog records per partition (None values: erased users' tombstones),
        all encoded now."""
        while self.encode_frozen(10_000):
            pass
        encoded, self._encoded = self._encoded, {}
        return {partition: records for partition, records in encoded.items() if records}
