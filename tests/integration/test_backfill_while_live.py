"""`make soak`: a backfill produced while the worker is live, faster than it reads."""

from __future__ import annotations

import pytest

from bench.scaling import run
from bench.throughput import generate
from pipeline.settings import Settings

pytestmark = pytest.mark.integration


@pytest.mark.soak
@pytest.mark.parametrize("seed", [7, 8, 9])
def test_a_backfill_written_while_the_worker_is_live_ends_on_the_reference(seed: int) -> None:
    """The worker is running and caught up; 200,000 events of 10,000 users are produced in
    large batches at several times the rate it scores them, so its topics are read to their
    end, fall behind, run ahead and are paused while the producer still writes them. Every
    published document must end where the reference scorer does (a topic paused while
    looking read to its end used to let the others run days ahead of its unread events)."""
    messages = generate(Settings(clickhouse_url="memory://"), 10_000, 200_000, seed)
    result = run(1, messages, partitions=4)
    assert result["reference"] == "equal", result
