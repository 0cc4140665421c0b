"""HTTP ingest, the parts with no web framework in them: a batch body to one raw message per
event, and a token bucket per producer key."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import orjson

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


class BatchError(ValueError):
    """A body that is not a batch of events at all (answered 422)."""


def split_batch(body: bytes, content_type: str) -> list[tuple[int | None, bytes]]:
    """One raw message per event with its line number (1-based; None in a JSON array): a
    JSON array's items, or NDJSON's non-empty lines (each line is validated on its own, so a
    bad line rejects that event only).

    Raises BatchError for an empty body, JSON that is not an array, or a body that is not
    JSON when the content type says JSON."""
    media = content_type.split(";")[0].strip().lower()
    if not body.strip():
        raise BatchError("the body is empty: send a JSON array of events, or NDJSON")
    if media in NDJSON_TYPES:
        lines = enumerate(body.splitlines(), start=1)
        return [(number, line.strip()) for number, line in lines if line.strip()]
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BatchError(
            f"the body is not JSON ({exc}); NDJSON needs Content-Type: application/x-ndjson"
        ) from exc
    if not isinstance(value, list):
        raise BatchError(f"expected a JSON array of events, got {type(value).__name__}")
    return [(None, orjson.dumps(item)) for item in value]


class TokenBucket:
    """At most `rate` events per second sustained, `burst` at once (Turner 1986)."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.at = clock()

    def take(self, n: int) -> float:
        """Take `n` tokens and return 0, or take none and return the seconds until `n`
        will be there (infinite if `n` is more than the burst)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if n <= self.tokens:
            self.tokens -= n
            return 0.0
        if n > self.burst:
            return math.inf
        return (n - self.tokens) / self.rate
