"""`lifecycle produce`: validate a JSONL or CSV file of events and send the valid ones."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from kafka.errors import KafkaError

from pipeline.settings import Settings
from schemas.client import EventProducer
from schemas.events import AnyEvent, Kind
from schemas.files import Record, format_of, read_events
from schemas.validation import TOO_LARGE, Rejection, Validator

SHOWN_LINES = 5  # line numbers shown per reason in the summary
SHOWN_DETAILS = 10  # rejections explained one by one on stderr
FLUSH_SECONDS = 60.0


def kinds_of(settings: Settings) -> dict[str, Kind]:
    """Input topic name to the kind of events it carries."""
    return {
        settings.topic_live: "live",
        settings.topic_chat: "chat",
        settings.topic_order: "order",
        settings.topic_touch: "touch",
    }


def kind_of(settings: Settings, topic: str) -> Kind:
    kinds = kinds_of(settings)
    if topic not in kinds:
        raise click.BadParameter(
            f"{topic!r} is not an input topic; known topics: {', '.join(kinds)}",
            param_hint="'--topic'",
        )
    return kinds[topic]


def file_format(path: Path, given: str | None) -> str:
    fmt = given or format_of(path)
    if fmt is None:
        raise click.UsageError(
            f"cannot tell the format of {path.name} from its extension: pass --format jsonl|csv"
        )
    return fmt


class Pacer:
    """At most `rate` events per second on a monotonic clock, sleeping (never spinning)."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = None if rate is None else 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self.next_at: float | None = None

    def wait(self) -> None:
        """Return when the next event may go; a source that fell behind gets no burst."""
        if self.interval is None:
            return
        now = self.clock()
        if self.next_at is not None and self.next_at > now:
            self.sleep(self.next_at - now)
            now = self.next_at  # the schedule, not the wake-up: oversleeping does not add up
        self.next_at = now + self.interval


@dataclass
class Report:
    """What happened to every record of a file."""

    sent: int = 0
    failed: int = 0
    first_error: str | None = None
    rejected: list[tuple[int, Rejection]] = field(default_factory=list)

    def rejection_summary(self) -> str:
        """`rejected 3: invalid_amount x2 (lines 4, 9: amount), unknown_type x1 (line 7: type)`."""
        if not self.rejected:
            return "rejected 0"
        by_reason: dict[str, list[tuple[int, Rejection]]] = {}
        for line, rejection in self.rejected:
            by_reason.setdefault(rejection.reason, []).append((line, rejection))
        parts = []
        for reason, items in by_reason.items():
            lines = [str(line) for line, _ in items[:SHOWN_LINES]]
            if len(items) > SHOWN_LINES:
                lines.append("...")
            fields = list(dict.fromkeys(r.field for _, r in items if r.field))
            where = f"line{'s' if len(items) > 1 else ''} {', '.join(lines)}"
            if fields:
                where += f": {', '.join(fields[:SHOWN_LINES])}"
            parts.append(f"{reason} x{len(items)} ({where})")
        return f"rejected {len(self.rejected)}: {', '.join(parts)}"

    def summary(self, topic: str) -> str:
        lines = [f"sent {self.sent} to {topic}"]
        if self.failed:
            lines.append(f"failed {self.failed}: {self.first_error}")
        lines.append(self.rejection_summary())
        return "\n".join(lines)

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected or self.failed else 0


def checked(
    validator: Validator, kind: Kind, record: dict[str, Any], now_ms: int
) -> tuple[AnyEvent, bytes]:
    """A record of a file checked as the worker will check it, with the bytes that go out;
    raises Rejection (`too_large` for one that grows past the limit once serialized)."""
    event = validator.check(kind, record, now_ms)
    value = event.model_dump_json(exclude_none=True).encode()
    if len(value) > validator.max_bytes:
        raise Rejection(TOO_LARGE, None, f"{len(value)} bytes, limit {validator.max_bytes}")
    return event, value


def send_records(
    records: Iterable[Record],
    kind: Kind,
    topic: str,
    validator: Validator,
    producer: EventProducer,
    pacer: Pacer,
    progress: Callable[[int], None] = lambda _line: None,
) -> Report:
    """Validate each record and send the valid ones; `progress` gets each record's line."""
    report = Report()
    attempted = 0

    def delivered(_metadata: object) -> None:
        report.sent += 1  # the producer's I/O thread; flush() returns after every callback

    def failed(exc: BaseException) -> None:
        report.first_error = report.first_error or f"{type(exc).__name__}: {exc}"

    for line, record in records:
        progress(line)
        if isinstance(record, Rejection):
            report.rejected.append((line, record))
            continue
        try:
            event, _ = checked(validator, kind, record, int(time.time() * 1000))
        except Rejection as rejection:
            report.rejected.append((line, rejection))
            continue
        pacer.wait()
        attempted += 1
        try:
            producer.send_to(topic, event).add_callback(delivered).add_errback(failed)
        except KafkaError as exc:
            failed(exc)
    try:
        producer.flush(timeout=FLUSH_SECONDS)
    except KafkaError:
        failed(TimeoutError(f"not acknowledged within {FLUSH_SECONDS:.0f}s"))
    report.failed = attempted - report.sent
    return report


def _line_count(path: Path) -> int:
    with path.open("rb") as data:
        return sum(1 for _ in data)


def run_produce(
    settings: Settings, path: Path, topic: str, fmt: str | None, rate: float | None
) -> int:
    """The command: progress on stderr, the summary on stdout; returns the exit code."""
    kind = kind_of(settings, topic)
    fmt = file_format(path, fmt)
    validator = settings.validator()
    lines = _line_count(path)
    producer = _connect(settings)
    try:
        with click.progressbar(
            length=lines, label=f"{path.name} -> {topic}", file=sys.stderr
        ) as bar:
            done = [0]

            def progress(line: int) -> None:
                bar.update(line - done[0])
                done[0] = line

            report = send_records(
                read_events(path, fmt), kind, topic, validator, producer, Pacer(rate), progress
            )
            bar.update(lines - done[0])
    finally:
        producer.close()
    for line, rejection in report.rejected[:SHOWN_DETAILS]:
        click.echo(f"line {line}: {rejection}", err=True)
    if len(report.rejected) > SHOWN_DETAILS:
        click.echo(f"... and {len(report.rejected) - SHOWN_DETAILS} more rejected", err=True)
    click.echo(report.summary(topic))
    return report.exit_code


def _connect(settings: Settings) -> EventProducer:
    try:
        return EventProducer(settings.kafka_bootstrap)
    except KafkaError as exc:
        raise click.ClickException(
            f"cannot reach Kafka at {settings.kafka_bootstrap} (KAFKA_BOOTSTRAP): {exc}"
        ) from exc
