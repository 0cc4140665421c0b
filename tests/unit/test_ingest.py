"""HTTP ingest without the web: batch bodies, the token bucket, key comparison."""

from __future__ import annotations

import math

import orjson
import pytest

from api.deps import known
from api.ingest import BatchError, TokenBucket, split_batch


def test_a_json_array_is_one_message_per_item() -> None:
    body = orjson.dumps([{"a": 1}, {"b": [2]}, "not an object"])
    assert split_batch(body, "application/json") == [
        (None, b'{"a":1}'), (None, b'{"b":[2]}'), (None, b'"not an object"')
    ]  # fmt: skip


def test_ndjson_lines_are_messages_and_a_bad_line_is_only_that_event() -> None:
    body = b'{"a":1}\n\n  {oops\n{"b":2}\r\n'
    # Each with its line number: blank lines are skipped, not renumbered.
    assert split_batch(body, "application/x-ndjson; charset=utf-8") == [
        (1, b'{"a":1}'), (3, b"{oops"), (4, b'{"b":2}')
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"", "application/json", "empty"),
        (b"  \n", "application/x-ndjson", "empty"),
        (b'{"type": "like"}', "application/json", "expected a JSON array"),
        (b'{"a":1}\n{"b":2}', "application/json", "NDJSON needs Content-Type"),
    ],
)
def test_a_body_that_is_no_batch_says_why(body: bytes, content_type: str, says: str) -> None:
    with pytest.raises(BatchError, match=says):
        split_batch(body, content_type)


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=20, clock=lambda: now[0])
    assert bucket.take(20) == 0
    assert bucket.take(5) == pytest.approx(0.5)  # refused: five tokens come in half a second
    now[0] = 0.5
    assert bucket.take(5) == 0
    assert bucket.take(1) == pytest.approx(0.1)
    assert math.isinf(bucket.take(21))  # more than a burst never fits
    now[0] = 100.0
    assert bucket.take(20) == 0  # refilled to the burst, not beyond
    assert bucket.take(1) > 0


def test_keys_are_found_whichever_position_and_only_exactly() -> None:
    keys = {"alpha-key", "beta-key", "gamma"}
    assert known("beta-key", keys)
    assert not known("beta-ke", keys)
    assert not known("beta-keyy", keys)
    assert not known("", keys)
    assert not known("beta-key", set())
