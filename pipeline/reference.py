"""An offline reference scorer: the same stages, RFM and purchase statistics, in one batch.

It reads a whole list of events, sorts each user's history by event time and derives the stage
history from the full set of interactions (no capped lists, no incremental state), so a
streaming run can be checked against it: after any replay, crash, restart or arrival order
the final figures must agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.domain.facts import to_base_cents
from pipeline.domain.history import derive
from pipeline.domain.stages import REACTIVATED_FROM, Stage, StageRules
from pipeline.scorer import rules_from
from pipeline.settings import Settings
from schemas.events import AnyEvent, Kind
from schemas.order import OrderEvent
from schemas.validation import Rejection

NOT_INTERACTIONS = frozenset({"touch_sent", "touch_opened"})


@dataclass
class Reference:
    """Final figures of one user."""

    user_id: str
    stage: Stage | None = None
    stage_since_ms: int | None = None
    transitions: list[tuple[Stage | None, Stage, int]] = field(default_factory=list)
    interactions: list[int] = field(default_factory=list)
    last_event_ms: int | None = None
    paid: list[int] = field(default_factory=list)
    refunds: int = 0
    monetary_cents: int = 0

    @property
    def reactivations(self) -> int:
        return sum(
            1 for f, t, _ in self.transitions if f in REACTIVATED_FROM and t not in REACTIVATED_FROM
        )

    @property
    def order_count(self) -> int:
        return len(self.paid)

    def at(self, ms: int | None) -> datetime | None:
        return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def reference_scores(
    messages: Iterable[tuple[str, bytes]],
    settings: Settings,
    partition_of: Callable[[str], int],
    now: datetime | None = None,
) -> dict[str, Reference]:
    """Final figures per user from (topic, raw bytes) messages, as the pipeline should end."""
    rules = rules_from(settings)
    kinds: dict[str, Kind] = dict(
        zip(settings.input_topics, ("live", "chat", "order", "touch"), strict=True)
    )
    validator = settings.validator()
    now_ms = int((now or datetime.now(tz=UTC)).timestamp() * 1000)
    events: dict[str, list[AnyEvent]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    valid: list[AnyEvent] = []
    for topic, raw in messages:
        try:
            event = validator.validate(kinds[topic], raw, now_ms)
        except Rejection:
            continue
        valid.append(event)
    for event in valid:  # the first of an event id to arrive counts; a reuse is refused
        if (event.user_id, event.event_id) not in seen:
            seen.add((event.user_id, event.event_id))
            events[event.user_id].append(event)
    for history in events.values():
        # At the same millisecond a payment comes before a refund: a refund is unknown only
        # when dated before its payment (whatever order the two came in).
        history.sort(key=lambda e: (e.ts_ms, e.type == "order_refunded"))
    clocks: dict[int, int] = defaultdict(int)
    for user_id, history in events.items():
        part = partition_of(user_id)
        clocks[part] = max(clocks[part], history[-1].ts_ms)
    out: dict[str, Reference] = {}
    for user_id, history in events.items():
        ref = out[user_id] = Reference(user_id)
        ledger: dict[str, list[int]] = {}  # order_id: [cents paid, cents refunded]
        for event in history:
            cents = 0
            if isinstance(event, OrderEvent):
                cents = to_base_cents(event.amount, event.currency, settings.fx_rates)
                entry = ledger.get(event.order_id)
                if event.type == "order_paid" and entry is not None:
                    continue  # paid already: a duplicate order, or a conflicting one
                if event.type == "order_refunded":
                    if entry is None:
                        continue  # a refund of an order never paid
                    cents = min(cents, entry[0] - entry[1])
                    entry[1] += cents
                if event.type == "order_paid":
                    ledger[event.order_id] = [cents, 0]
            ts = event.ts_ms
            ref.last_event_ms = ts if ref.last_event_ms is None else max(ref.last_event_ms, ts)
            if event.type not in NOT_INTERACTIONS:
                ref.interactions.append(ts)
            if event.type == "order_paid":
                ref.paid.append(ts)
                ref.monetary_cents += cents
            elif event.type == "order_refunded":
                ref.refunds += 1
                ref.monetary_cents -= cents
        _derive(rules, ref, clocks[partition_of(user_id)])
        if ref.last_event_ms is None:  # every event of the user was refused (unknown orders)
            del out[user_id]
    return out


def _derive(rules: StageRules, ref: Reference, until_ms: int) -> None:
    """The whole stage history from every interaction, up to the partition's clock."""
    interactions = sorted(ref.interactions)
    if not interactions:
        return
    first_paid = min(ref.paid, default=None)
    ref.transitions = derive(rules, interactions, first_paid, None, interactions[0], until_ms)
    if ref.transitions:
        _, ref.stage, ref.stage_since_ms = ref.transitions[-1]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def differences(document: dict[str, Any], ref: Reference) -> list[str]:
    """Fields of a published score document (as JSON) that differ from the reference."""
    expected = {
        "stage": ref.stage.value if ref.stage else None,
        "stage_since": _iso(ref.at(ref.stage_since_ms)),
        "reactivations": ref.reactivations,
        "interactions": len(ref.interactions),
        "order_count": ref.order_count,
        "refund_count": ref.refunds,
        "monetary": round(ref.monetary_cents / 100, 2),
        "last_event_at": _iso(ref.at(ref.last_event_ms)),
        "first_paid_at": _iso(ref.at(min(ref.paid, default=None))),
        "last_paid_at": _iso(ref.at(max(ref.paid, default=None))),
    }
    return [
        f"{k}: {document.get(k)!r} != {v!r}" for k, v in expected.items() if document.get(k) != v
    ]
