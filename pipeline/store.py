"""Per-user state of the partitions this process owns, in memory, with the users changed since
the last checkpoint; pure (the worker persists it to the changelog and RocksDB)."""

from __future__ import annotations

from collections.abc import Iterator
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
    changed user once per checkpoint, however many events it had.
    """

    def __init__(self) -> None:
        self._users: dict[str, UserState] = {}
        self._partition_of: dict[str, int] = {}
        self._members: dict[int, set[str]] = {}
        self._dirty: dict[int, set[str]] = {}
        self._removed: dict[int, set[str]] = {}  # erased since the last checkpoint

    def __len__(self) -> int:
        return len(self._users)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._users

    def get(self, user_id: str) -> UserState | None:
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
        for user_id in list(self._members.get(partition, ())):
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
