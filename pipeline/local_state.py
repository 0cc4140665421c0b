"""Each owned partition's users on local disk (RocksDB via rocksdict), with the changelog offset
they include, so that a restart reads only the changelog's tail instead of all of it.

The changelog topic is the source of truth; this is a cache of it. A write stores the users
and the offset in one atomic batch, so the two never disagree after a crash.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from rocksdict import BottommostLevelCompaction, CompactOptions, Options, Rdict, WriteBatch

log = logging.getLogger(__name__)

_OFFSET_KEY = b"\x00changelog-offset"


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    return options


class LocalPartition:
    """One partition's users: `None` store keeps nothing (memory://), recovery reads it all."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db: Rdict | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = Rdict(str(path), options=_options())

    @property
    def changelog_offset(self) -> int:
        """The last changelog offset included here; -1 when there is none."""
        if self._db is None:
            return -1
        raw = self._db.get(_OFFSET_KEY)
        return -1 if raw is None else int(raw)

    def users(self) -> Iterator[tuple[bytes, bytes]]:
        if self._db is None:
            return
        for key, value in self._db.items():
            if isinstance(key, bytes) and key != _OFFSET_KEY:
                yield key, bytes(value)

    def write(self, records: Iterable[tuple[bytes, bytes | None]], changelog_offset: int) -> None:
        """Store the records (None deletes) and the offset they bring the partition to."""
        if self._db is None:
            return
        batch = WriteBatch(raw_mode=True)
        deleted = False
        for key, value in records:
            if value is None:
                batch.delete(key)
                deleted = True
            else:
                batch.put(key, value)
        batch.put(_OFFSET_KEY, str(changelog_offset).encode())
        self._db.write(batch)
        if deleted:
            self._purge()

    def _purge(self) -> None:
        """Rewrite the files so that deleted users (erasures) are gone from disk: RocksDB
        keeps a deleted value in older files until a compaction, and their keys in the
        manifest until it is rolled, which reopening does."""
        assert self._db is not None
        assert self.path is not None
        self._db.flush()
        options = CompactOptions()
        options.set_bottommost_level_compaction(BottommostLevelCompaction.force())
        self._db.compact_range(None, None, options)
        self._db.close()
        self._db = Rdict(str(self.path), options=_options())

    def reset(self) -> None:
        """Forget everything (the changelog no longer holds what this copy was built from)."""
        if self._db is None or self.path is None:
            return
        self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._db = Rdict(str(self.path), options=_options())

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def open_partition(store_url: str, directory: Path, partition: int) -> LocalPartition:
    """The local copy of a partition for the configured store (`rocksdb://` or `memory://`).

    A copy that cannot be opened (another worker sharing the data directory holds its lock)
    is not used: the partition is rebuilt from the changelog alone, which is always right.
    """
    if not store_url.startswith("rocksdb"):
        return LocalPartition(None)
    path = directory / f"partition-{partition}"
    try:
        return LocalPartition(path)
    except Exception as exc:
        log.warning("local state %s unusable (%s); reading the changelog instead", path, exc)
        return LocalPartition(None)
