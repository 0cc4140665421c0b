"""`make bench`: the raw aiokafka + orjson limit, the Quix Streams peer and the full pipeline on
the same topic contents (a realistic mixed workload from the demo's simulated shop), then the
reference check, trigger latency, a steady load with end-to-end latency and point reads,
memory, state size and recovery after SIGKILL (docs/performance.md says what each means).

    python -m bench.throughput --users 10000 --events 200000

Prints one JSON object as its last line; exits with 1 when the pipeline's scores differ from
the reference scorer's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2

from bench.live import (
    cpu_seconds,
    first_event,
    recovery,
    reference_check,
    rss_mb,
    state_bytes_per_user,
    steady_load,
)
from bench.text_cost import sentiment_cost
from pipeline.broker import start_tansu
from pipeline.demo import topics_of
from pipeline.demo_model import World, utc_midnight
from pipeline.metrics import metric_sum
from pipeline.reference import reference_scores
from pipeline.settings import Settings
from pipeline.topics import ensure_topics

Message = tuple[str, bytes, bytes]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def generate(settings: Settings, users: int, events: int, seed: int) -> list[Message]:
    """`events` messages of `users` simulated users, in event-time order, ~1% resends."""
    topics = topics_of(settings)
    now = datetime.now(tz=UTC)
    days = 30
    while True:
        start = utc_midnight(now) - timedelta(days=days)
        world = World(users, start, days, seed)
        out = [e for d in range(days) for e in world.day(start + timedelta(days=d))]
        out = [e for e in out if e.ts < now]
        if len(out) >= events or days >= 3650:
            break
        days = int(days * events / max(1, len(out)) * 1.1) + 1
    out.sort(key=lambda e: e.ts)
    messages = [
        (topics[type(e)], e.user_id.encode(), e.model_dump_json(exclude_none=True).encode())
        for e in out[-events:]
    ]
    rng = random.Random(seed)
    for _ in range(len(messages) // 100):
        i = rng.randrange(len(messages))
        messages.insert(min(len(messages), i + 1 + rng.randrange(100)), messages[i])
    return messages[:events]


async def produce(bootstrap: str, messages: list[Message]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [await producer.send(t, key=k, value=v) for t, k, v in messages]
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_rate(bootstrap: str, topics: list[str], expected: int) -> dict[str, float]:
    """aiokafka getmany + orjson on every value, from offset zero; timed from the first batch."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    seen, first = 0, None
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            if batches and first is None:
                first = time.perf_counter()
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
    finally:
        await consumer.stop()
    seconds = time.perf_counter() - (first or time.perf_counter())
    return {"events": seen, "seconds": seconds, "events_per_s": seen / seconds}


PEER_PYTHON = Path(".venv-peer/bin/python")


def peer_rate(bootstrap: str, topics: list[str], expected: int, tmp: Path) -> dict[str, float]:
    """The Quix Streams peer (bench/peer_quix.py) in its own environment, same topics."""
    if not PEER_PYTHON.exists():
        raise RuntimeError(f"{PEER_PYTHON} is missing: `make bench` builds it")
    script = Path(__file__).with_name("peer_quix.py")
    with open(tmp / "peer.log", "ab") as log:
        done = subprocess.run(
            [str(PEER_PYTHON), str(script), bootstrap, str(tmp / "quix-state"), str(expected),
             *topics],
            stdout=subprocess.PIPE, stderr=log, timeout=1800, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the Quix peer failed ({done.returncode}); see {tmp / 'peer.log'}")
    figures: dict[str, float] = orjson.loads(done.stdout.splitlines()[-1])
    return figures


def metrics(port: int, *names: str) -> dict[str, float]:
    """The named metrics' sums from one scrape restricted to them (`name[]`: the worker then
    renders only those; a full exposition of every series costs the worker's CPU, which the
    bench's polling twice a second would take from what it measures)."""
    params = {"name[]": list(names)}
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", params=params, timeout=5).text
    return {name: metric_sum(text, name) for name in names}


def metric(port: int, name: str) -> float:
    return metrics(port, name)[name]


async def trigger_latency(settings: Settings, count: int, rate: float) -> dict[str, float]:
    """From a paid order produced to its `first_order` trigger read from the topic, for
    `count` new buyers at `rate` orders per second, against a caught-up worker."""
    topic = settings.topic_triggers
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, fetch_max_wait_ms=10
    )
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    latencies: list[float] = []
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)

        async def read() -> None:
            while len(latencies) < count:
                batches = await consumer.getmany(timeout_ms=100)
                arrived = time.perf_counter()
                for records in batches.values():
                    for record in records:
                        data = orjson.loads(record.value)
                        at = sent.pop(data["subject_id"], None)
                        if data["rule"] == "first_order" and at is not None:
                            latencies.append((arrived - at) * 1000)

        reader = asyncio.create_task(read())
        tag = time.time_ns()
        for i in range(count):
            user = f"latency-{tag}-{i}"
            order = {"event_id": f"{user}-o", "type": "order_paid", "user_id": user,
                     "ts": int(time.time() * 1000), "order_id": f"{user}-o", "amount": "99.00",
                     "currency": "CNY", "channel": "live"}  # fmt: skip
            sent[user] = time.perf_counter()
            await producer.send(settings.topic_order, key=user.encode(), value=orjson.dumps(order))
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(reader, 60)
    finally:
        await producer.stop()
        await consumer.stop()
    latencies.sort()
    return {
        "trigger_p50_ms": latencies[len(latencies) // 2],
        "trigger_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


class Worker:
    """A worker process of the bench, with its metrics port."""

    PROCESSED = ("lifecycle_events_scored_total", "lifecycle_duplicates_total",
                 "lifecycle_dead_letters_total")  # fmt: skip

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.started = time.perf_counter()
        with open(log, "ab") as out:
            command = [sys.executable, "-m", "pipeline.cli", "worker"]
            self.proc = subprocess.Popen(command, env=env, stdout=out, stderr=out)

    def processed(self) -> float:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {self.proc.returncode}; see {self.log}")
        try:
            return sum(metrics(self.port, *self.PROCESSED).values())
        except httpx.HTTPError:
            return 0.0

    def committed(self) -> float:
        try:
            return metric(self.port, "lifecycle_events_committed_total")
        except httpx.HTTPError:
            return 0.0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(60)


class Counted(Protocol):
    """What the rate is read from: one worker, or a group of them."""

    started: float
    proc: subprocess.Popen[bytes]

    def processed(self) -> float: ...

    def committed(self) -> float: ...


def profiler(pid: int, phase: str) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the worker without stopping it, when `BENCH_PROFILE` names a file and
    `BENCH_PROFILE_PHASE` (`run`, the default, or `load`) is this phase: collapsed stacks, by
    thread; with `BENCH_PROFILE_IDLE=1` the samples of waiting threads too (where the loop
    waits for records or a checkpoint)."""
    profile = os.environ.get("BENCH_PROFILE")
    if not profile or os.environ.get("BENCH_PROFILE_PHASE", "run") != phase:
        return None
    idle = ["--idle"] if os.environ.get("BENCH_PROFILE_IDLE") == "1" else []
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking", "--format",
         "raw", "-r", "100", "-d", os.environ.get("BENCH_PROFILE_SECONDS", "40"),
         "--threads", *idle, "-o", profile, "--pid", str(pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def throughput(worker: Counted, expected: int) -> dict[str, float]:
    """Start-up (to the first 1% of the events scored), and the rate from 10% of the events
    scored to all of them durable (documents published, rows written, state in the changelog,
    offsets committed: the last checkpoint is part of the work). Also the rate at which events
    are scored from 10% to 90%, which does not wait for checkpoints. From the worker's metrics
    polled twice a second, interpolated."""
    spy = profiler(worker.proc.pid, "run")
    samples: list[tuple[float, float]] = [(worker.started, 0.0)]
    durable: list[tuple[float, float]] = [(worker.started, 0.0)]
    base_rss = 0.0  # the worker's resident memory at its first scored event
    while durable[-1][1] < expected:
        if time.perf_counter() - worker.started > 1800:
            raise RuntimeError(f"only {durable[-1][1]} of {expected} events after 30 minutes")
        time.sleep(0.5)  # polling a metrics endpoint, not a race
        now = time.perf_counter()
        samples.append((now, worker.processed()))
        durable.append((now, worker.committed()))
        if not base_rss and samples[-1][1] > 0:
            base_rss = rss_mb(worker.proc.pid)[0]
    if spy is not None:
        spy.wait(120)
    if os.environ.get("BENCH_DEBUG"):
        log("samples: " + " ".join(f"{t - worker.started:.2f}:{n:.0f}" for t, n in samples))
        log("durable: " + " ".join(f"{t - worker.started:.2f}:{n:.0f}" for t, n in durable))

    def crossing(series: list[tuple[float, float]], target: float) -> float:
        """When the count reached `target`, interpolated between the samples around it."""
        for (t0, n0), (t1, n1) in itertools.pairwise(series):
            if n1 >= target > n0:
                return t0 + (t1 - t0) * ((target - n0) / (n1 - n0) if n1 > n0 else 1.0)
        return series[-1][0]

    # From 10% (the first batches warm up) to the last event durable, which includes the
    # wait of the last events for the event clock and the last checkpoint.
    t10, t90 = crossing(samples, 0.1 * expected), crossing(samples, 0.9 * expected)
    t_all = crossing(durable, expected)
    return {
        "startup_s": crossing(samples, 0.01 * expected) - worker.started,
        "seconds": t_all - t10,
        "events_per_s": 0.9 * expected / (t_all - t10),
        "scored_events_per_s": 0.8 * expected / (t90 - t10),
        "base_rss_mb": base_rss,
    }


def start_api(env: dict[str, str], base_url: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "api"], env=env, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API was not ready after 120 s; see {log}")
        time.sleep(0.2)  # waiting for a process to come up, with a deadline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-orders", type=int, default=200)
    parser.add_argument("--load-seconds", type=float, default=10.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lifecycle-bench-"))
    port = free_port()
    broker = start_tansu("127.0.0.1", port, tmp / "broker.log")
    worker: Worker | None = None
    api: subprocess.Popen[bytes] | None = None
    try:
        metrics_port, api_port = free_port(), free_port()
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
            CLICKHOUSE_URL=f"chdb:///{tmp / 'chdb'}",
            DATA_DIR=str(tmp / "data"),
            WORKER_METRICS_PORT=str(metrics_port),
            API_PORT=str(api_port),
            API_KEYS='["bench"]',
            APP_ID="bench",
            MODEL_REFIT_SECONDS="3600",
        )
        env.pop("EMBEDDED", None)
        settings = Settings(
            kafka_bootstrap=env["KAFKA_BOOTSTRAP"], clickhouse_url="memory://", app_id="bench"
        )
        base_url = f"http://127.0.0.1:{api_port}"
        asyncio.run(ensure_topics(settings))
        t0 = time.perf_counter()
        messages = generate(settings, args.users, args.events, args.seed)
        generated_s = time.perf_counter() - t0
        produce_s = asyncio.run(produce(settings.kafka_bootstrap, messages))
        text_cost = sentiment_cost(value for _, _, value in messages)
        inputs = list(settings.input_topics)
        log("raw client limit")
        raw = asyncio.run(raw_rate(settings.kafka_bootstrap, inputs, len(messages)))
        log("Quix Streams peer")
        peer = peer_rate(settings.kafka_bootstrap, inputs, len(messages), tmp)
        log("the full pipeline")
        worker = Worker(env, metrics_port, tmp / "worker.log")
        rate = throughput(worker, len(messages))
        log("reference check")
        partitions = settings.topic_partitions
        references = reference_scores(
            ((topic, value) for topic, _, value in messages), settings,
            lambda user: (murmur2(user.encode()) & 0x7FFFFFFF) % partitions,
        )  # fmt: skip
        wrong = asyncio.run(reference_check(settings, references))
        state_bytes = asyncio.run(state_bytes_per_user(settings))
        api = start_api(env, base_url, tmp / "api.log")
        log("trigger latency")
        triggers = asyncio.run(trigger_latency(settings, args.latency_orders, 20.0))
        log(f"steady load at half the measured rate ({rate['events_per_s'] / 2:.0f}/s)")
        templates = [(t, orjson.loads(v)) for t, _, v in messages[-20_000:]]
        spy = profiler(worker.proc.pid, "load")
        # Where the cores went during the load: each process's CPU time over the load's.
        processes = {"worker": worker.proc.pid, "api": api.pid, "broker": broker.pid,
                     "bench": os.getpid()}  # fmt: skip
        cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        load_began = time.perf_counter()
        (tmp / "users.txt").write_text("\n".join(sorted(references)))
        load = asyncio.run(steady_load(settings, base_url, "bench", templates,
                                       rate["events_per_s"] / 2,
                                       args.load_seconds, tmp / "users.txt"))  # fmt: skip
        load_wall = time.perf_counter() - load_began
        load_cpu = {
            name: round((cpu_seconds(pid) - cpu_before[name]) / load_wall, 2)
            for name, pid in processes.items()
        }
        if spy is not None:
            spy.wait(120)
        rss, rss_peak = rss_mb(worker.proc.pid)
        log("recovery after SIGKILL")
        killed = worker

        def restart() -> None:
            nonlocal worker
            killed.stop(signal.SIGKILL)
            worker = Worker(env, metrics_port, tmp / "worker-2.log")

        recovery_s = asyncio.run(recovery(settings, base_url, "bench", restart, 180))
        log("first event after a fresh start")

        def fresh_start() -> None:
            nonlocal worker
            assert worker is not None
            worker.stop(signal.SIGTERM)
            worker = Worker(env, metrics_port, tmp / "worker-3.log")

        def assigned() -> float:
            try:
                return metric(metrics_port, "lifecycle_worker_assigned_partitions")
            except httpx.HTTPError:
                return 0.0

        first_ms = asyncio.run(first_event(settings, base_url, "bench", fresh_start, assigned, 180))
        result: dict[str, Any] = {
            "events": len(messages),
            "users": args.users,
            "generate_s": round(generated_s, 2),
            "produce_s": round(produce_s, 2),
            "raw_events_per_s": round(raw["events_per_s"]),
            "peer_events_per_s": round(peer["events_per_s"]),
            "peer_startup_s": round(peer["startup_s"], 2),
            "events_per_s": round(rate["events_per_s"]),
            "scored_events_per_s": round(rate["scored_events_per_s"]),
            "ratio_to_raw": round(rate["events_per_s"] / raw["events_per_s"], 3),
            "ratio_to_peer": round(rate["events_per_s"] / peer["events_per_s"], 3),
            "load_events_per_s": round(load["load_events"] / args.load_seconds),
            "load_cpu_cores": load_cpu,
            "e2e_p50_ms": round(load["e2e_p50_ms"], 1),
            "e2e_p99_ms": round(load["e2e_p99_ms"], 1),
            "publish_p50_ms": round(load["publish_p50_ms"], 1),
            "publish_p99_ms": round(load["publish_p99_ms"], 1),
            "read_p50_ms": round(load["read_p50_ms"], 2),
            "read_p99_ms": round(load["read_p99_ms"], 2),
            "served_read_p50_ms": round(load["served_read_p50_ms"], 2),
            "served_read_p99_ms": round(load["served_read_p99_ms"], 2),
            "trigger_p50_ms": round(triggers["trigger_p50_ms"], 1),
            "trigger_p99_ms": round(triggers["trigger_p99_ms"], 1),
            "startup_s": round(rate["startup_s"], 2),
            "recovery_s": round(recovery_s, 2),
            "first_event_ms": round(first_ms, 1),
            "state_bytes_per_user": round(state_bytes),
            "rss_mb": round(rss, 1),
            # The resident memory the users add: after the load, less the worker's own at its
            # first scored event (interpreter, libraries, chDB, buffers), per owned user.
            "rss_per_user_kb": round((rss - rate["base_rss_mb"]) * 1024 / len(references), 2),
            "rss_peak_mb": round(rss_peak, 1),
            "reference": "equal" if not wrong else f"{len(wrong)} users differ",
            **text_cost,
        }
        if wrong:
            log("users that differ from the reference, e.g.: " + " | ".join(wrong[:5]))
        print(orjson.dumps(result).decode())
        if wrong:
            sys.exit(1)
    finally:
        for proc in (api, worker.proc if worker else None):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(60)
        broker.terminate()
        broker.wait(10)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
