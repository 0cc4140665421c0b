"""The RFM scale: where each 1-5 score begins, from one version of the buyer population.

Each dimension's values (last paid day, paid orders, net cents) are placed by their midrank,
the share of the population below a value plus half its ties, stretched so that the lowest
group sits at 0 and the highest at 1, and cut into five equal parts:

    score(v) = 1 + min(4, floor(5 (m(v) - m_lowest) / (m_highest - m_lowest)))

so ties share a score (it is a function of the value), the most recent buyers always get
R = 5 and the top spenders M = 5, the lowest group gets 1, and a population with no ties is
cut into quintiles. A population that is one group scores 5 (its members are the most
recent, the most frequent and the top spenders). The scale is a version of the population:
equal values get equal scores against it at any moment, and the API scores every document
against the latest version the worker published.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SCORES = 5


def thresholds(items: Sequence[tuple[int, int]], k: int = SCORES) -> tuple[int, ...]:
    """The k-1 values at which scores 2..k begin, from (value, count) pairs in ascending
    order of value (a non-empty population). O(distinct values)."""
    if not items:
        raise ValueError("no scale of an empty population")
    # Twice the midrank (in counts): 2 * below + count, kept as integers.
    doubled, below = [], 0
    for _, count in items:
        doubled.append(2 * below + count)
        below += count
    low, high = doubled[0], doubled[-1]
    if low == high:  # one group: everyone is at the top
        first = items[0][0]
        return (first,) * (k - 1)
    out = []
    i = 0
    for j in range(1, k):
        # First group whose stretched midrank reaches j / k: k (d - low) >= j (high - low).
        while k * (doubled[i] - low) < j * (high - low):
            i += 1
        out.append(items[i][0])
    return tuple(out)


def score_of(value: int, cuts: tuple[int, ...]) -> int:
    """1 + the number of thresholds at or below `value`."""
    return 1 + bisect_right(cuts, value)


@dataclass(frozen=True, slots=True)
class RfmScale:
    """One version of the population's thresholds for R (last paid day), F (paid orders) and
    M (net cents)."""

    recency: tuple[int, ...]
    frequency: tuple[int, ...]
    monetary: tuple[int, ...]
    version: int
    buyers: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "buyers": self.buyers,
            "recency_day": list(self.recency),
            "frequency": list(self.frequency),
            "monetary_cents": list(self.monetary),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RfmScale:
        return cls(
            recency=tuple(data["recency_day"]),
            frequency=tuple(data["frequency"]),
            monetary=tuple(data["monetary_cents"]),
            version=int(data["version"]),
            buyers=int(data["buyers"]),
        )
