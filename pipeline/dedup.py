"""Event ids a user was seen with: a resend or a replay after a crash changes nothing, an id
reused with another payload is refused.

The ids live in the user's state record (`UserState.seen_ids`, packed with their event times
and payload digests, see `pipeline.domain.state.seen_at`), so an event's effect and its id are
written together and cannot part.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.domain.facts import Fact, seen_at, seen_payload
from pipeline.domain.state import UserState
from pipeline.settings import Settings
from schemas.validation import CONFLICTING_DUPLICATE, Rejection


class Dedup:
    """How long and how many event ids are kept per user (`DEDUP_*` settings)."""

    def __init__(self, settings: Settings) -> None:
        self.horizon_ms = int(settings.dedup_horizon_days * 86_400_000)
        self.max_ids = settings.dedup_max_ids
        self.min_ids = settings.dedup_min_ids

    @staticmethod
    def seen(user: UserState, digest: int, fact: Fact, event_id: str) -> bool:
        """Whether the user had the event id (by its digest, `event_digest`) already.

        Raises Rejection `conflicting_duplicate` when it came with another payload: a
        producer reusing ids, not a retry (a resend spelled differently has the same
        payload digest)."""
        packed = user.seen_ids.get(digest)
        if packed is None:
            return False
        first = seen_payload(packed)
        if first and fact.payload and first != fact.payload:
            at = datetime.fromtimestamp(seen_at(packed) / 1000, tz=UTC).isoformat()
            raise Rejection(
                CONFLICTING_DUPLICATE,
                "event_id",
                f"event_id {event_id} was used already (event time {at}) for an event with "
                "another payload: a producer reusing ids, not a retry",
            )
        return True

    def remember(self, user: UserState, digest: int, fact: Fact, settled_ms: int | None) -> None:
        """Keep the event id with its event time and payload digest, within the bounds.

        `settled_ms` is the partition's watermark: ids are dropped once their event time is
        the horizon behind it (and behind the user's latest event), not behind the latest
        event alone, so a topic read far behind the others (a backfill, a catch-up) keeps the
        ids its own resends will be checked against; None (not known yet) drops none by age."""
        newest = user.last_event_ms
        if settled_ms is not None and newest is not None:
            newest = min(newest, settled_ms)
        user.remember(
            digest,
            fact.ts_ms,
            self.horizon_ms,
            self.max_ids,
            self.min_ids,
            payload=fact.payload,
            newest_ms=newest,
            by_age=settled_ms is not None,
        )
