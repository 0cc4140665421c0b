"""What sentiment costs per comment, for the benchmark: the texts of the generated chat and
live-comment events classified one by one without the short-text cache (the cost of a text
seen for the first time), in microseconds."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import orjson

from pipeline.domain import sentiment

TEXT_TYPES = frozenset({"comment", "message", "reply"})


def sentiment_cost(values: Iterable[bytes], limit: int = 5_000) -> dict[str, float]:
    """p50 and p99 microseconds per text over up to `limit` texts of the given events, and
    the share of Chinese texts (those go through the shipped model)."""
    texts: list[str] = []
    for value in values:
        event = orjson.loads(value)
        if event.get("type") in TEXT_TYPES and isinstance(event.get("text"), str):
            texts.append(event["text"])
            if len(texts) >= limit:
                break
    if not texts:
        return {}
    sentiment.classify(texts[0])  # the model loads once
    took = []
    for text in texts:
        began = time.perf_counter_ns()
        sentiment._classify(text)
        took.append((time.perf_counter_ns() - began) / 1_000)
    chinese = sum(1 for t in texts if sentiment._CJK.search(t) is not None)
    return {
        "sentiment_p50_us": round(float(np.percentile(took, 50)), 1),
        "sentiment_p99_us": round(float(np.percentile(took, 99)), 1),
        "sentiment_chinese_share": round(chinese / len(texts), 3),
    }
