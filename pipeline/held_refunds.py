"""Refunds that arrive before their order's payment, held in the user's state until it comes.

A refund and its payment come from different producers often enough (a history loaded by
`lifecycle backfill` while the shop's live refunds flow, a refund service and a payment
service): the refund can arrive first. Applied in event-time order it would count; refused on
arrival it would not, so the result would depend on the order of arrival. Instead a refund of
an order the ledger does not hold is kept in the user's state record (`UserState.held_refunds`,
so it moves with the partition and survives a crash like the rest of the state) for as long as
its payment may still arrive on time, that is while its event time is within `LATENESS_SECONDS`
of the partition's watermark:

- when the payment comes, the held refunds of the order are applied after it, as if they had
  arrived in event-time order (one dated before the payment is `unknown_order`, as in
  event-time order);
- once the watermark is more than the lateness past a held refund, its payment is not coming:
  it is dead-lettered as `unknown_order` with the event as validated (offset -1: the record's
  own offset was committed with the state that held it);
- a refund already older than that when it arrives is `unknown_order` at once, as before.

While held, a refund counts in `lifecycle_held_refunds` and nowhere else: events in = scored +
duplicates + dead letters + held, always. Its event id is remembered when it is held, so a
resend is a plain duplicate.
"""

from __future__ import annotations

from typing import NamedTuple

from pipeline.domain import orders
from pipeline.domain.facts import Fact
from pipeline.domain.state import UserState
from pipeline.store import UserStore
from schemas.validation import Rejection

# At most this many refunds are held per user; one more is `unknown_order` at once (a producer
# sending refunds of orders that never come must not grow a user's state record).
MAX_HELD_PER_USER = 20

# A held refund: [event time ms, the refund as validated (JSON text)].
TS_AT, EVENT_AT = 0, 1


class LateDeadLetter(NamedTuple):
    """A held refund refused after it was held: its payment did not come within the
    lateness, or came dated after it. `value` is the refund as validated (JSON)."""

    topic: str
    partition: int
    key: bytes
    value: bytes
    rejection: Rejection


def unknown_order(order_id: str, why: str) -> Rejection:
    return Rejection(orders.UNKNOWN_ORDER, "order_id", f"refund of order {order_id}, {why}")


class HeldRefunds:
    """Which users of each partition hold refunds, and the rules for holding them."""

    def __init__(self, lateness_ms: int, topic: str) -> None:
        self.lateness_ms = lateness_ms
        self.topic = topic  # the order topic, which the dead letters name
        self.holders: dict[int, set[str]] = {}

    def adopt(self, partition: int, users: list[UserState]) -> None:
        """The partition's users are in the store (a start, a partition taken over)."""
        self.holders[partition] = {u.user_id for u in users if u.held_refunds}

    def forget(self, partition: int) -> None:
        self.holders.pop(partition, None)

    def discard(self, user_id: str) -> None:
        for holders in self.holders.values():
            holders.discard(user_id)

    def count(self, store: UserStore) -> int:
        """Refunds held now in the owned partitions."""
        total = 0
        for holders in self.holders.values():
            for user_id in holders:
                user = store.get(user_id)
                if user is not None:
                    total += sum(len(held) for held in user.held_refunds.values())
        return total

    def hold(
        self, user: UserState, fact: Fact, event_json: str, partition: int, mark: int | None
    ) -> None:
        """Keep a refund of an order the ledger does not hold; raises Rejection
        `unknown_order` when its payment cannot come on time any more, or when the user holds
        `MAX_HELD_PER_USER` already."""
        order_id = fact.order_id or ""
        if mark is not None and fact.ts_ms < mark - self.lateness_ms:
            raise unknown_order(
                order_id,
                "which this user was not seen paying (or paid before the order ledger's "
                "horizon): send the payment first",
            )
        if sum(len(held) for held in user.held_refunds.values()) >= MAX_HELD_PER_USER:
            raise unknown_order(
                order_id,
                f"which this user was not seen paying; {MAX_HELD_PER_USER} refunds of theirs "
                "wait for their payments already",
            )
        user.held_refunds.setdefault(order_id, []).append([fact.ts_ms, event_json])
        self.holders.setdefault(partition, set()).add(user.user_id)

    def dead_letter(
        self, user_id: str, partition: int, event_json: str, rejection: Rejection
    ) -> LateDeadLetter:
        return LateDeadLetter(
            self.topic, partition, user_id.encode(), event_json.encode(), rejection
        )

    def release(self, user: UserState, order_id: str, partition: int) -> list[str]:
        """The order's payment was applied: its held refunds (JSON text, oldest first)."""
        held = user.held_refunds.pop(order_id, None)
        if not user.held_refunds:
            self.holders.get(partition, set()).discard(user.user_id)
        return [entry[EVENT_AT] for entry in sorted(held or [], key=lambda e: e[TS_AT])]

    def expire(self, partition: int, store: UserStore, mark: int) -> list[LateDeadLetter]:
        """Held refunds of the partition that the watermark `mark` has left more than the
        lateness behind: their payment is not coming. Their users' state changes."""
        out: list[LateDeadLetter] = []
        holders = self.holders.get(partition)
        if not holders:
            return out
        cutoff = mark - self.lateness_ms
        for user_id in sorted(holders):
            user = store.get(user_id)
            if user is None:
                holders.discard(user_id)
                continue
            changed = False
            for order_id in sorted(user.held_refunds):
                entries = user.held_refunds[order_id]
                late = [e for e in entries if e[TS_AT] < cutoff]
                if not late:
                    continue
                changed = True
                kept = [e for e in entries if e[TS_AT] >= cutoff]
                if kept:
                    user.held_refunds[order_id] = kept
                else:
                    del user.held_refunds[order_id]
                why = (
                    "which this user was not seen paying: no payment came within the lateness "
                    f"bound ({self.lateness_ms // 1000} s of event time)"
                )
                rejection = unknown_order(order_id, why)
                for entry in late:
                    out.append(self.dead_letter(user_id, partition, entry[EVENT_AT], rejection))
            if not user.held_refunds:
                holders.discard(user_id)
            if changed:
                store.put(user, partition)
        return out
