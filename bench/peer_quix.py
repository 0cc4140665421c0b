"""The Quix Streams peer: the minimal per-user aggregation in its state store, on the bench's
input topics. Runs in its own environment (`make bench` builds `.venv-peer` from
`bench/peer-requirements.txt`: Quix pins pydantic below the version the product uses), so it
imports nothing of the product.

    python bench/peer_quix.py BOOTSTRAP STATE_DIR EXPECTED TOPIC [TOPIC ...]

Prints one JSON object: events, seconds (first to last message), events_per_s, startup_s.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from quixstreams import Application


def main() -> None:
    bootstrap, state_dir, expected_text, *topics = sys.argv[1:]
    expected = int(expected_text)
    started = time.perf_counter()
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-peer-{time.time_ns()}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
        processing_guarantee="at-least-once",
        consumer_extra_config={"session.timeout.ms": 10_000},
    )
    seen = {"n": 0, "first": 0.0, "last": 0.0}

    def aggregate(value: dict[str, Any], state: Any) -> dict[str, Any]:
        """What every per-user pipeline does at least: count, amount, latest event time."""
        if seen["n"] == 0:
            seen["first"] = time.perf_counter()
        user = state.get("user") or {"events": 0, "amount": 0.0, "last_ts": None}
        user["events"] += 1
        amount = value.get("amount")
        if amount is not None:
            user["amount"] += float(amount)
        user["last_ts"] = value.get("ts")
        state.set("user", user)
        seen["n"] += 1
        if seen["n"] >= expected:
            seen["last"] = time.perf_counter()
            app.stop()
        return value

    for name in topics:
        sdf = app.dataframe(app.topic(name, value_deserializer="json"))
        sdf.update(aggregate, stateful=True)
    app.run()
    seconds = seen["last"] - seen["first"]
    print(
        json.dumps(
            {
                "events": seen["n"],
                "seconds": seconds,
                "events_per_s": seen["n"] / seconds if seconds > 0 else 0.0,
                "startup_s": seen["first"] - started,
            }
        )
    )


if __name__ == "__main__":
    main()
