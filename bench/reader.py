"""A client of the API in its own process: point reads of known users, timed one by one.

    python -m bench.reader BASE_URL KEY SECONDS USERS_FILE

Kept out of the bench's own process, whose event loop is busy producing the load: a read
timed there would also wait for the load generator. Prints one JSON object: the latencies in
milliseconds.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import httpx
import orjson


def main() -> None:
    base_url, key, seconds_text, users_file = sys.argv[1:]
    users = Path(users_file).read_text().split()
    seconds = float(seconds_text)
    rng = random.Random(len(users))
    latencies: list[float] = []
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=10) as client:
        client.get("/healthz")  # the connection is open before the first timed read
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            user = rng.choice(users)
            began = time.perf_counter()
            response = client.get(f"/v1/users/{user}")
            latencies.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"read of {user}: {response.status_code} {response.text}")
            time.sleep(0.01)  # a steady reader, 100 reads a second at most, not a flood
    sys.stdout.write(orjson.dumps({"latencies_ms": latencies}).decode() + "\n")


if __name__ == "__main__":
    main()
