"""Erasure of a person (PIPL): the records of the erasures topic and what every process keeps
of them.

The API writes an erasure `requested` (with the user id) to a compacted topic keyed by the
erasure id; the worker that owns the user's partition erases the person from its state, the
changelog, the scores topic and ClickHouse, and once a checkpoint has made all of it durable
writes the erasure again as `complete`, without the user id (compaction then drops the
request). Every record carries the subject's hash, so that events and triggers of the person
recorded before the request can be recognised and dropped wherever they are read later (a
replay after a crash, a consumer lagging behind, the API's trigger feed loading the topic).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Status = Literal["requested", "complete"]


def subject_hash(user_id: str) -> str:
    """A 128-bit hash of a user id, in hex: how erasure records name a person once erased."""
    return hashlib.blake2b(user_id.encode(), digest_size=16, person=b"erasure").hexdigest()


@dataclass(frozen=True)
class Erasure:
    """One erasure's record.

    `requested_ms` is the wall-clock time of the request (epoch ms): events and triggers of
    the person whose Kafka record time is before it belong to the person erased; later ones
    start a new person. `rows_deleted` counts the ClickHouse rows deleted per table and
    `state_found` whether the worker held state for the user (both on `complete`).
    """

    erasure_id: str
    subject: str  # subject_hash of the user id
    status: Status
    requested_ms: int
    user_id: str | None = None  # only while requested
    completed_ms: int | None = None
    state_found: bool | None = None
    rows_deleted: dict[str, int] = field(default_factory=dict)
    # Where the user-scores tombstone went (partition, offset): the API says `complete`
    # once its own view has read past it.
    scores_tombstone: tuple[int, int] | None = None

    @classmethod
    def request(cls, erasure_id: str, user_id: str, now_ms: int) -> Erasure:
        return cls(erasure_id, subject_hash(user_id), "requested", now_ms, user_id=user_id)

    def completed(
        self,
        now_ms: int,
        state_found: bool,
        rows_deleted: dict[str, int],
        scores_tombstone: tuple[int, int] | None,
    ) -> Erasure:
        """The record that replaces the request: no user id."""
        return Erasure(
            self.erasure_id, self.subject, "complete", self.requested_ms,
            completed_ms=now_ms, state_found=state_found, rows_deleted=dict(rows_deleted),
            scores_tombstone=scores_tombstone,
        )  # fmt: skip

    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {
            "erasure_id": self.erasure_id,
            "subject": self.subject,
            "status": self.status,
            "requested_ms": self.requested_ms,
        }
        if self.user_id is not None:
            data["user_id"] = self.user_id
        if self.status == "complete":
            data["completed_ms"] = self.completed_ms
            data["state_found"] = self.state_found
            data["rows_deleted"] = self.rows_deleted
            data["scores_tombstone"] = self.scores_tombstone
        return orjson.dumps(data)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Erasure:
        """Raises ValueError on a record that is not an erasure."""
        try:
            data = orjson.loads(raw)
            status = data["status"]
            if status not in ("requested", "complete"):
                raise ValueError(f"unknown erasure status {status!r}")
            tombstone = data.get("scores_tombstone")
            return cls(
                erasure_id=str(data["erasure_id"]),
                subject=str(data["subject"]),
                status=status,
                requested_ms=int(data["requested_ms"]),
                user_id=data.get("user_id"),
                completed_ms=data.get("completed_ms"),
                state_found=data.get("state_found"),
                rows_deleted={str(k): int(v) for k, v in (data.get("rows_deleted") or {}).items()},
                scores_tombstone=None if tombstone is None else (tombstone[0], tombstone[1]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"not an erasure record: {exc}") from exc


class ErasureLog:
    """The latest record of every erasure, and the request time of each erased subject."""

    def __init__(self) -> None:
        self.erasures: dict[str, Erasure] = {}
        self._pending: dict[str, Erasure] = {}
        self._cutoff: dict[str, int] = {}  # subject hash -> latest request time (ms)

    def apply(self, erasure: Erasure) -> None:
        self.erasures[erasure.erasure_id] = erasure
        if erasure.status == "requested" and erasure.user_id:
            self._pending[erasure.erasure_id] = erasure
        else:
            self._pending.pop(erasure.erasure_id, None)
        previous = self._cutoff.get(erasure.subject, 0)
        self._cutoff[erasure.subject] = max(previous, erasure.requested_ms)

    def get(self, erasure_id: str) -> Erasure | None:
        return self.erasures.get(erasure_id)

    def pending(self) -> list[Erasure]:
        """Requests not complete yet, oldest first."""
        return sorted(self._pending.values(), key=lambda e: (e.requested_ms, e.erasure_id))

    def erased_before(self, user_id: str, record_ms: int) -> bool:
        """Whether a record of `user_id` written at `record_ms` (its Kafka record time, epoch
        ms) belongs to a person erased since: it was recorded before an erasure request."""
        if not self._cutoff:
            return False
        cutoff = self._cutoff.get(subject_hash(user_id))
        return cutoff is not None and record_ms < cutoff

    def __bool__(self) -> bool:
        return bool(self._cutoff)
