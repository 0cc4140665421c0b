"""A backfill's plan: the file's records validated as `lifecycle produce` validates them, each
routed to its kind's input topic by its `type`, the valid ones in event-time order
(`pipeline.backfill` sends them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, get_args

from pipeline.produce import Report, checked, kinds_of
from pipeline.settings import Settings
from schemas.events import EVENT_MODELS, Kind
from schemas.files import Record
from schemas.validation import MISSING_FIELD, UNKNOWN_TYPE, Rejection, Validator

# Every event type names its kind: the four kinds' types are disjoint.
KIND_OF_TYPE: dict[str, Kind] = {
    event_type: kind
    for kind, model in EVENT_MODELS.items()
    for event_type in get_args(model.model_fields["type"].annotation)
}
assert len(KIND_OF_TYPE) == sum(
    len(get_args(m.model_fields["type"].annotation)) for m in EVENT_MODELS.values()
), "two kinds share an event type: a backfill could not route by type"


class Outgoing(NamedTuple):
    """A valid event, serialized, with its topic and key; `line` is its line in the file."""

    ts_ms: int
    line: int
    topic: str
    key: bytes
    value: bytes


@dataclass
class Plan:
    """The valid events of a file in event-time order, and the rejected lines."""

    events: list[Outgoing]
    report: Report
    seconds: float = 0.0  # reading, validating and sorting


def topics_by_kind(settings: Settings) -> dict[Kind, str]:
    """Each kind's input topic."""
    return {kind: topic for topic, kind in kinds_of(settings).items()}


def kind_of_record(data: dict[str, Any]) -> Kind:
    """The kind of an event by its `type`, or a Rejection as the validator words it."""
    event_type = data.get("type")
    if event_type is None:
        raise Rejection(MISSING_FIELD, "type", "required field is missing")
    if not isinstance(event_type, str) or event_type not in KIND_OF_TYPE:
        raise Rejection(
            UNKNOWN_TYPE, "type", f"{event_type!r} is not a type of any of the four input topics"
        )
    return KIND_OF_TYPE[event_type]


def plan(
    records: Iterable[Record],
    topics: dict[Kind, str],
    validator: Validator,
    progress: Callable[[int], None] = lambda _line: None,
    clock: Callable[[], float] = time.time,
) -> Plan:
    """Validate every record (as `lifecycle produce` does) and route it by its type; the
    valid ones come back sorted by event time, ties in file order."""
    report = Report()
    events: list[Outgoing] = []
    for line, record in records:
        progress(line)
        if isinstance(record, Rejection):
            report.rejected.append((line, record))
            continue
        try:
            kind = kind_of_record(record)
            event, value = checked(validator, kind, record, int(clock() * 1000))
        except Rejection as rejection:
            report.rejected.append((line, rejection))
            continue
        events.append(Outgoing(event.ts_ms, line, topics[kind], event.user_id.encode(), value))
    events.sort(key=lambda e: e.ts_ms)  # list.sort is stable: equal times keep file order
    return Plan(events, report)
