"""`make bench-workers`: how the pipeline's throughput grows with worker processes.

    python -m bench.scaling --workers 1 2 4 --users 10000 --events 200000

For each count, on a fresh broker: the workers are started and their consumer group settles
(every input partition assigned, each worker owning some), then the workload of `make bench`
is produced as one backlog, and the rate is measured as in `make bench` (from 10% of the
events scored to the last one durable, summed over the workers' metrics), followed by the
reference check on the published documents. Each worker has its own data directory and chDB
(chDB serves one process). Prints one JSON object per count, then one with all of them as
its last line; exits with 1 if any run differs from the reference scorer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from kafka.partitioner.default import murmur2

from bench.live import reference_check, rss_mb
from bench.throughput import Worker, free_port, generate, log, metric, produce, throughput
from pipeline.broker import start_tansu
from pipeline.reference import reference_scores
from pipeline.settings import Settings
from pipeline.topics import ensure_topics

Message = tuple[str, bytes, bytes]


class Group:
    """Worker processes of one consumer group, counted together."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self.proc = workers[0].proc  # the one a profiler samples
        self.started = min(w.started for w in workers)

    def processed(self) -> float:
        return sum(w.processed() for w in self.workers)

    def committed(self) -> float:
        return sum(w.committed() for w in self.workers)

    def assigned(self) -> list[float]:
        out = []
        for w in self.workers:
            if w.proc.poll() is not None:
                raise RuntimeError(f"a worker exited with {w.proc.returncode}; see {w.log}")
            try:
                out.append(metric(w.port, "lifecycle_worker_assigned_partitions"))
            except httpx.HTTPError:
                out.append(0.0)
        return out

    def stop(self) -> None:
        for w in self.workers:
            w.stop()


def settle(group: Group, inputs: int, limit_s: float = 120) -> float:
    """Wait until every input partition is assigned and each worker owns some; seconds."""
    started = time.perf_counter()
    while True:
        assigned = group.assigned()
        if sum(assigned) == inputs and all(n > 0 for n in assigned):
            return time.perf_counter() - started
        if time.perf_counter() - started > limit_s:
            raise RuntimeError(f"the group did not settle in {limit_s} s: {assigned}")
        time.sleep(0.2)  # polling the workers' metrics, with a deadline


def run(count: int, messages: list[Message], partitions: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"lifecycle-scaling-{count}-"))
    port = free_port()
    broker = start_tansu("127.0.0.1", port, tmp / "broker.log")
    group: Group | None = None
    try:
        bootstrap = f"127.0.0.1:{port}"
        settings = Settings(
            kafka_bootstrap=bootstrap, clickhouse_url="memory://", app_id="bench",
            topic_partitions=partitions,
        )  # fmt: skip
        asyncio.run(ensure_topics(settings))
        workers = []
        for n in range(count):
            env = dict(os.environ)
            env.pop("EMBEDDED", None)
            metrics_port = free_port()
            env.update(
                KAFKA_BOOTSTRAP=bootstrap,
                TOPIC_PARTITIONS=str(partitions),
                CLICKHOUSE_URL=f"chdb:///{tmp / f'chdb-{n}'}",
                DATA_DIR=str(tmp / f"data-{n}"),
                WORKER_METRICS_PORT=str(metrics_port),
                APP_ID="bench",
                MODEL_REFIT_SECONDS="3600",
            )
            workers.append(Worker(env, metrics_port, tmp / f"worker-{n}.log"))
        group = Group(workers)
        settle_s = settle(group, partitions * len(settings.input_topics))
        # The clock starts now, with the backlog produced while the workers wait for it.
        for w in workers:
            w.started = time.perf_counter()
        group.started = min(w.started for w in workers)
        asyncio.run(produce(bootstrap, messages))
        rate = throughput(group, len(messages))
        references = reference_scores(
            ((topic, value) for topic, _, value in messages), settings,
            lambda user: (murmur2(user.encode()) & 0x7FFFFFFF) % partitions,
        )  # fmt: skip
        wrong = asyncio.run(reference_check(settings, references))
        rss = [rss_mb(w.proc.pid)[0] for w in workers]
        if wrong:
            log("users that differ from the reference, e.g.: " + " | ".join(wrong[:5]))
        return {
            "workers": count,
            "settle_s": round(settle_s, 2),
            "events_per_s": round(rate["events_per_s"]),
            "scored_events_per_s": round(rate["scored_events_per_s"]),
            "events_per_s_per_worker": round(rate["events_per_s"] / count),
            "rss_mb": [round(r, 1) for r in rss],
            "reference": "equal" if not wrong else f"{len(wrong)} users differ",
        }
    finally:
        if group is not None:
            group.stop()
        broker.terminate()
        broker.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if max(args.workers) > args.partitions:
        parser.error("more workers than partitions: the extra ones would own nothing")
    settings = Settings(clickhouse_url="memory://", topic_partitions=args.partitions)
    messages = generate(settings, args.users, args.events, args.seed)
    runs = []
    for count in args.workers:
        log(f"{count} worker(s)")
        result = run(count, messages, args.partitions)
        print(orjson.dumps(result).decode(), flush=True)
        runs.append(result)
    base = runs[0]["events_per_s"] / runs[0]["workers"]
    summary = {
        "events": len(messages),
        "users": args.users,
        "partitions": args.partitions,
        "cores": os.cpu_count(),
        "runs": runs,
        "speedup": {str(r["workers"]): round(r["events_per_s"] / base, 2) for r in runs},
    }
    print(orjson.dumps(summary).decode())
    if any(r["reference"] != "equal" for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
