"""Bench phases against a running worker and API: end-to-end latency under a steady load,
point reads under that load, the reference check, state size, memory, and recovery."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.reference import Reference, differences
from pipeline.settings import Settings

Message = tuple[str, bytes, bytes]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def buckets_of(exposition: str, metric: str, **labels: str) -> dict[float, float]:
    """Cumulative counts by upper bound (`le`) of one histogram's series in Prometheus text
    exposition, the series chosen by `labels`."""
    wanted = [f'{name}="{value}"' for name, value in labels.items()]
    out: dict[float, float] = {}
    for line in exposition.splitlines():
        if not line.startswith(metric + "_bucket{") or not all(w in line for w in wanted):
            continue
        series, _, count = line.rpartition(" ")
        bound = series.split('le="', 1)[1].split('"', 1)[0]
        out[float(bound)] = float(count)  # "+Inf" parses as inf
    return out


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The q-quantile of the observations made between two reads of a cumulative histogram,
    interpolated within its bucket as Prometheus's `histogram_quantile` does (the lowest
    bucket from zero; a quantile in the +Inf bucket is the highest finite bound)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return float("nan")
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


async def read_topic_latest(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    """The latest value per key of a topic, read to its end as it is now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", fetch_max_wait_ms=20)  # fmt: skip
    await consumer.start()
    latest: dict[bytes, bytes] = {}
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)

        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=200, max_records=10_000)).values():
                for record in records:
                    if record.key is not None and record.value is not None:
                        latest[record.key] = record.value
                    elif record.key is not None:
                        latest.pop(record.key, None)
    finally:
        await consumer.stop()
    return latest


async def reference_check(
    settings: Settings, references: dict[str, Reference], timeout_s: float = 60
) -> list[str]:
    """Users whose published score document differs from the reference (empty: all equal);
    re-read until they agree or the time is up (the last documents may still be on the way)."""
    deadline = time.monotonic() + timeout_s
    while True:
        documents = await read_topic_latest(settings.kafka_bootstrap, settings.topic_scores)
        wrong = []
        for user_id, ref in references.items():
            raw = documents.get(user_id.encode())
            if raw is None:
                wrong.append(f"{user_id}: no document")
            elif diff := differences(orjson.loads(raw), ref):
                wrong.append(f"{user_id}: {'; '.join(diff)}")
        if not wrong or time.monotonic() > deadline:
            return wrong
        await asyncio.sleep(1.0)  # waiting on the worker's next publication, with a deadline


async def state_bytes_per_user(settings: Settings) -> float:
    latest = await read_topic_latest(settings.kafka_bootstrap, settings.changelog_topic)
    return sum(len(v) for v in latest.values()) / max(1, len(latest))


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of a process now and at its peak, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) a process has used so far, in seconds (`/proc/pid/stat`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Probe:
    """Sends a first event for a new user and times until the API serves the user."""

    def __init__(self, settings: Settings, base_url: str, key: str) -> None:
        self.settings = settings
        self.base_url = base_url
        self.headers = {"X-API-Key": key}
        self.arrived: dict[str, float] = {}
        self.events: dict[str, asyncio.Event] = {}
        self.published_ms: list[float] = []  # event sent to its document on the scores topic
        self._watch: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Watch the scores topic, so the API is asked only once the document is out."""
        topic = self.settings.topic_scores
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                                    group_id=None, fetch_max_wait_ms=5)  # fmt: skip
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        self._consumer = consumer
        self._watch = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    user = (record.key or b"").decode()
                    if user in self.events and user not in self.arrived:
                        self.arrived[user] = now
                        self.events[user].set()

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self._consumer is not None:
            await self._consumer.stop()

    async def measure(
        self, producer: AIOKafkaProducer, client: httpx.AsyncClient, user: str, limit_s: float
    ) -> float:
        """Milliseconds from the event sent to the user's document served by the API."""
        self.events[user] = asyncio.Event()
        now_ms = int(time.time() * 1000)
        event = {"event_id": f"{user}-1", "type": "like", "user_id": user, "ts": now_ms,
                 "room_id": "bench", "session_id": "bench"}  # fmt: skip
        sent = time.perf_counter()
        await producer.send(self.settings.topic_live, key=user.encode(), value=orjson.dumps(event))
        await asyncio.wait_for(self.events[user].wait(), limit_s)
        self.published_ms.append((self.arrived[user] - sent) * 1000)
        while (await client.get(f"/v1/users/{user}")).status_code != 200:
            if time.perf_counter() - sent > limit_s:
                raise TimeoutError(f"{user} not served after {limit_s} s")
            await asyncio.sleep(0.002)  # the API's view follows the topic within milliseconds
        return (time.perf_counter() - sent) * 1000


async def steady_load(
    settings: Settings,
    base_url: str,
    key: str,
    templates: list[tuple[str, dict[str, Any]]],
    rate: float,
    seconds: float,
    users_file: Path,
) -> dict[str, float]:
    """`rate` events per second, re-timed to now with new ids, for `seconds`; meanwhile probes
    time event-to-API latency and a reader in its own process times point reads of known users."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=2)
    await producer.start()
    probe = Probe(settings, base_url, key)
    await probe.start()
    latencies: list[float] = []
    reads: list[float] = []
    tag = time.time_ns()
    async with httpx.AsyncClient(base_url=base_url, headers=probe.headers, timeout=10) as client:
        # The API's own measure of point reads (request in to response start), next to the
        # client's, which also counts both processes waiting for a core.
        series = {"route": "/v1/users/{user_id}", "method": "GET", "status": "200"}
        histogram = "lifecycle_api_request_seconds"
        served_before = buckets_of((await client.get("/metrics")).text, histogram, **series)

        async def load() -> int:
            sent, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                due = int(elapsed * rate)
                now_ms = int(time.time() * 1000)
                while sent < due:
                    topic, template = templates[sent % len(templates)]
                    event = dict(template, event_id=f"load-{tag}-{sent}", ts=now_ms)
                    await producer.send(topic, key=event["user_id"].encode(),
                                        value=orjson.dumps(event))  # fmt: skip
                    sent += 1
                await asyncio.sleep(0.005)  # pacing the load generator
            return sent

        async def probes() -> None:
            tasks = []
            start = time.perf_counter()
            i = 0
            while time.perf_counter() - start < seconds:
                user = f"probe-{tag}-{i}"
                tasks.append(asyncio.create_task(probe.measure(producer, client, user, 30)))
                i += 1
                await asyncio.sleep(0.05)  # 20 probes a second
            latencies.extend(await asyncio.gather(*tasks))

        async def reader() -> None:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.reader", base_url, key, str(seconds),
                str(users_file), stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"the reader exited with {proc.returncode}")
            reads.extend(orjson.loads(out)["latencies_ms"])

        sent, _, _ = await asyncio.gather(load(), probes(), reader())
        served_after = buckets_of((await client.get("/metrics")).text, histogram, **series)
    await producer.stop()
    await probe.stop()
    return {
        "load_events": sent,
        "e2e_p50_ms": percentile(latencies, 0.5),
        "e2e_p99_ms": percentile(latencies, 0.99),
        "publish_p50_ms": percentile(probe.published_ms, 0.5),
        "publish_p99_ms": percentile(probe.published_ms, 0.99),
        "read_p50_ms": percentile(reads, 0.5),
        "read_p99_ms": percentile(reads, 0.99),
        "reads": len(reads),
        "served_read_p50_ms": 1000 * histogram_quantile(served_before, served_after, 0.5),
        "served_read_p99_ms": 1000 * histogram_quantile(served_before, served_after, 0.99),
    }


async def recovery(
    settings: Settings, base_url: str, key: str, restart: Callable[[], None], limit_s: float
) -> float:
    """Seconds from a worker killed to a new event of a new user served again: the new worker
    joins, rebuilds its users and catches up first."""
    killed = time.perf_counter()
    restart()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    probe = Probe(settings, base_url, key)
    await probe.start()
    try:
        async with httpx.AsyncClient(base_url=base_url, headers=probe.headers) as client:
            user = f"recovery-{time.time_ns()}"
            await probe.measure(producer, client, user, limit_s)
    finally:
        await producer.stop()
        await probe.stop()
    return time.perf_counter() - killed


async def first_event(
    settings: Settings,
    base_url: str,
    key: str,
    restart: Callable[[], None],
    assigned: Callable[[], float],
    limit_s: float,
) -> float:
    """Milliseconds from the first event after a fresh start to its user served by the API:
    the worker is restarted and has its partitions (recovered, reading) before the event is
    sent, so this is what a new event waits for in a worker that has just started."""
    restart()
    deadline = time.monotonic() + limit_s
    wanted = len(settings.input_topics) * settings.topic_partitions
    while assigned() < wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the restarted worker had no partitions after {limit_s} s")
        await asyncio.sleep(0.1)  # polling the worker's metrics, with a deadline
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    probe = Probe(settings, base_url, key)
    await probe.start()
    try:
        async with httpx.AsyncClient(base_url=base_url, headers=probe.headers) as client:
            return await probe.measure(producer, client, f"first-{time.time_ns()}", limit_s)
    finally:
        await producer.stop()
        await probe.stop()
