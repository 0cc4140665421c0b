"""Lists and counts of the API at a million users (issue 17): the API's index of current
scores filled with synthetic documents, then `GET /v1/segments`'s counts and `GET /v1/users`
pages timed as the routes call them (no HTTP: the index is what grows with users).

    python -m bench.lists --users 1000000

Prints one JSON object: the build rate, resident memory added, and p50/p99 milliseconds of
each query.
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from api.user_index import UserIndex, decode_cursor
from pipeline.domain.rfm_scale import RfmScale

STAGES = ["potential", "new", "active", "silent", "churned"]
WEIGHTS = [0.35, 0.05, 0.25, 0.2, 0.15]
DAY0 = 20_000


def documents(users: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    out = []
    for n in range(users):
        stage = rng.choices(STAGES, WEIGHTS)[0]
        doc: dict[str, Any] = {"stage": stage, "order_count": 0, "monetary": 0.0,
                               "last_paid_at": None}  # fmt: skip
        if stage != "potential" and rng.random() < 0.7:
            day = DAY0 + rng.randrange(400)
            doc["last_paid_at"] = datetime.fromtimestamp(day * 86_400, tz=UTC).isoformat()
            doc["order_count"] = 1 + int(rng.expovariate(0.4))
            doc["monetary"] = round(rng.lognormvariate(5, 1), 2)
        out.append((f"u{n:08d}", orjson.dumps(doc)))
    return out


def timed(call: Callable[[], Any], repeats: int) -> dict[str, float]:
    took = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        took.append((time.perf_counter() - began) * 1000)
    return {"p50_ms": round(float(np.percentile(took, 50)), 3),
            "p99_ms": round(float(np.percentile(took, 99)), 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    docs = documents(args.users, args.seed)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    index = UserIndex()
    began = time.perf_counter()
    for user, raw in docs:
        index.apply(user, raw)
    build_s = time.perf_counter() - began
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = RfmScale(recency=(DAY0 + 80, DAY0 + 160, DAY0 + 240, DAY0 + 320),
                     frequency=(2, 3, 4, 6), monetary=(5_000, 10_000, 20_000, 50_000),
                     version=1, buyers=len(index.values))  # fmt: skip
    middle = decode_cursor(index.page(scale, limit=100, after=f"u{args.users // 2:08d}")[1] or "")
    result = {
        "users": args.users,
        "buyers": len(index.values),
        "distinct_rfm_values": len(index.combos),
        "index_build_per_s": round(args.users / build_s),
        "index_rss_mb": round((rss1 - rss0) / 1024, 1),
        "segments": timed(lambda: index.counts(scale), 20),
        "users_page": timed(lambda: index.page(scale, limit=100), 200),
        "users_page_mid_cursor": timed(lambda: index.page(scale, after=middle, limit=100), 200),
        "users_stage_silent": timed(lambda: index.page(scale, stage="silent", limit=100), 200),
        "users_segment_champions": timed(
            lambda: index.page(scale, segment_="Champions", limit=100), 50
        ),
        "users_class_a_and_silent": timed(
            lambda: index.page(scale, stage="silent", class_="A", limit=100), 50
        ),
    }
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
