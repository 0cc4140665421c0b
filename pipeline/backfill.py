"""`lifecycle backfill`: history of the four kinds from one file, in event-time order, marked.

The file is read and validated whole first (the same reading rules and validation as
`lifecycle produce`), each event routed to the topic of its kind by its `type`; the valid
events are sorted by event time (stably) and sent keyed by user_id, each with the record header
`lifecycle-backfill: <id>`. Once they are acknowledged, one end marker (header
`lifecycle-backfill-end: <id>`, null key, empty value) goes to every partition of each of the
four input topics, so a consumer can tell when the backfill is finished on each partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from pipeline.backfill_plan import Outgoing, Plan, plan, topics_by_kind
from pipeline.batched_sends import BatchedSends
from pipeline.produce import SHOWN_DETAILS, Pacer, file_format
from pipeline.settings import Settings
from schemas.files import read_events
from schemas.headers import Headers, backfill_headers, end_marker_headers

FLUSH_SECONDS = 60.0
PROGRESS_EVERY = 1000  # events sent between two updates of the progress bar
ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class BackfillError(click.ClickException):
    """A usage or connection problem: nothing was sent (exit 2)."""

    exit_code = 2


def end_markers(partitions: dict[str, list[int]]) -> list[tuple[str, int]]:
    """(topic, partition) of every end marker: one on every partition of each topic."""
    return [(topic, p) for topic, numbers in partitions.items() for p in sorted(numbers)]


def new_backfill_id() -> str:
    return uuid.uuid4().hex


def check_backfill_id(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise click.BadParameter(
            f"{value!r}: a backfill id is 1 to 128 of A-Z a-z 0-9 . _ : -", param_hint="'--id'"
        )
    return value


class Delays:
    """`Pacer`'s schedule, as the delay owed before each event (never slept here)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._owed = 0.0
        self._pacer = Pacer(rate, clock=clock, sleep=self._owe)

    def _owe(self, seconds: float) -> None:
        self._owed += seconds

    def next(self) -> float:
        self._pacer.wait()
        owed, self._owed = self._owed, 0.0
        return owed


@dataclass
class Sent:
    """What sending did: records acknowledged, failed (with the first error), end markers."""

    sent: int = 0
    failed: int = 0
    first_error: str | None = None
    markers: int = 0
    seconds: float = 0.0

    def fail(self, exc: BaseException, count: int = 1) -> None:
        self.failed += count
        self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"


async def _acknowledged(
    producer: AIOKafkaProducer, futures: list[tuple[asyncio.Future[Any], int]], result: Sent
) -> int:
    """Wait for the batches queued (each with its record count); returns how many records
    the broker acknowledged."""
    # On a timeout, the futures not done say what was not acknowledged.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(producer.flush(), FLUSH_SECONDS)
    done = 0
    for future, count in futures:
        if not future.done() or future.cancelled():
            future.cancel()
            result.fail(TimeoutError(f"not acknowledged within {FLUSH_SECONDS:.0f}s"), count)
        elif (error := future.exception()) is not None:
            result.fail(error, count)
        else:
            done += count
    return done


async def send_plan(
    producer: AIOKafkaProducer,
    events: list[Outgoing],
    partitions: dict[str, list[int]],
    backfill_id: str,
    rate: float | None = None,
    progress: Callable[[int], None] = lambda _n: None,
) -> Sent:
    """Send the events in order, then, once they are acknowledged, the end markers.

    Records go in batches built here (`pipeline.batched_sends`), submitted when full; each
    partition's records land in the order they were sent."""
    result = Sent()
    delays = None if rate is None else Delays(rate)
    headers: Headers = backfill_headers(backfill_id)
    batches = BatchedSends(producer, partitions, remember_keys=True)
    futures: list[tuple[asyncio.Future[Any], int]] = []
    started = time.perf_counter()
    for n, event in enumerate(events, start=1):
        if delays is not None and (delay := delays.next()) > 0:
            # What is due goes before the pause.
            futures += [(s.future, s.records) for s in await batches.submit()]
            await asyncio.sleep(delay)
        try:
            await batches.add(event.topic, event.key, event.value, headers=headers)
        except ValueError as exc:
            result.fail(exc)
        if n % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    futures += [(s.future, s.records) for s in await batches.submit()]
    progress(len(events) % PROGRESS_EVERY)
    result.sent = await _acknowledged(producer, futures, result)
    result.seconds = time.perf_counter() - started
    # After the events are acknowledged, whatever the client does with retries.
    end = end_marker_headers(backfill_id)
    markers = [
        (await producer.send(topic, b"", key=None, partition=partition, headers=end), 1)
        for topic, partition in end_markers(partitions)
    ]
    result.markers = await _acknowledged(producer, markers, result)
    return result


async def _connect(settings: Settings) -> tuple[AIOKafkaProducer, dict[str, list[int]]]:
    """A started producer and the partitions of the four input topics."""
    # aiokafka with batches built here, not the SDK's kafka-python. Sending the 200,000
    # validated events of a bench file (10,000 users, ~190 bytes each) to the embedded
    # broker on a loaded 2-core machine: kafka-python with crc32c 17,000-21,000/s (29 us of
    # CPU a record), aiokafka's per-record `send` 24,000/s (18 us), aiokafka batches of
    # 512 KB built per partition 68,000-250,000/s (3.9 us). The whole command took 5.1 to
    # 6.3 s for them (32,000-39,000 events/s), most of it reading and validating the file
    # (about 20 us of CPU an event, as `lifecycle produce` validates).
    # aiokafka keeps one request in flight per broker: a partition's records land in order.
    # Records carry the time they were sent, not their event time, so a broker's time-based
    # retention does not delete history as it arrives.
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",  # history must survive a leader change on a real cluster
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=8 * 1024 * 1024,
        request_timeout_ms=30_000,
    )
    try:
        await producer.start()
        cluster = await producer.client.fetch_all_metadata()
    except (KafkaError, OSError) as exc:
        await producer.stop()
        raise BackfillError(
            f"cannot reach Kafka at {settings.kafka_bootstrap} (KAFKA_BOOTSTRAP): {exc}"
        ) from exc
    partitions: dict[str, list[int]] = {}
    for topic in settings.input_topics:
        numbers = cluster.partitions_for_topic(topic)
        if not numbers:
            await producer.stop()
            raise BackfillError(
                f"topic {topic!r} does not exist on {settings.kafka_bootstrap}: "
                "create the product's topics with `lifecycle topics`"
            )
        partitions[topic] = sorted(numbers)
    return producer, partitions


def _line_count(path: Path) -> int:
    with path.open("rb") as data:
        return sum(1 for _ in data)


async def _run(
    settings: Settings, path: Path, fmt: str, backfill_id: str, rate: float | None
) -> tuple[Plan, Sent]:
    producer, partitions = await _connect(settings)
    try:
        lines = _line_count(path)
        with click.progressbar(length=lines, label=f"{path.name}: reading", file=sys.stderr) as bar:
            done = [0]

            def read(line: int) -> None:
                if line - done[0] >= PROGRESS_EVERY:
                    bar.update(line - done[0])
                    done[0] = line

            started = time.perf_counter()
            planned = plan(
                read_events(path, fmt), topics_by_kind(settings), settings.validator(), read
            )
            planned.seconds = time.perf_counter() - started
            bar.update(lines - done[0])
        with click.progressbar(
            length=len(planned.events), label=f"backfill {backfill_id}", file=sys.stderr
        ) as bar:
            sent = await send_plan(
                producer, planned.events, partitions, backfill_id, rate, bar.update
            )
    finally:
        await producer.stop()
    return planned, sent


def summary(planned: Plan, sent: Sent, topics: int, backfill_id: str) -> str:
    markers = f"end markers on the {topics} input topics"
    lines = [f"backfilled {sent.sent} events, {markers} (id {backfill_id})"]
    if sent.failed:
        lines.append(f"failed {sent.failed}: {sent.first_error}")
    lines.append(planned.report.rejection_summary())
    return "\n".join(lines)


def run_backfill(
    settings: Settings, path: Path, fmt: str | None, backfill_id: str | None, rate: float | None
) -> int:
    """The command: progress on stderr, the summary on stdout; returns the exit code."""
    fmt = file_format(path, fmt)
    backfill_id = backfill_id or new_backfill_id()
    click.echo(f"backfill id {backfill_id}", err=True)
    planned, sent = asyncio.run(_run(settings, path, fmt, backfill_id, rate))
    rejected = planned.report.rejected
    for line, rejection in rejected[:SHOWN_DETAILS]:
        click.echo(f"line {line}: {rejection}", err=True)
    if len(rejected) > SHOWN_DETAILS:
        click.echo(f"... and {len(rejected) - SHOWN_DETAILS} more rejected", err=True)
    valid = len(planned.events)
    click.echo(
        f"read and sorted {valid} valid events in {planned.seconds:.2f} s"
        f" ({valid / max(planned.seconds, 1e-9):,.0f}/s); sent them in {sent.seconds:.2f} s"
        f" ({sent.sent / max(sent.seconds, 1e-9):,.0f}/s), then {sent.markers} end markers",
        err=True,
    )
    click.echo(summary(planned, sent, len(set(settings.input_topics)), backfill_id))
    return 1 if rejected or sent.failed else 0
