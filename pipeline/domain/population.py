"""What the population models need from one partition's users, and the merge of partitions.

Every worker summarises each input partition it owns; the model leader merges the latest
summary of every partition (from the compacted population topic) and fits the models on the
merge. A summary is a function of the partition's users only, and the merge of the
partitions' summaries is the summary of the whole population, so one worker or many, however
the partitions are spread, give the same models:

- RFM: per dimension, (value, buyers) counts: last paid day and paid orders exact, net cents
  in logarithmic buckets of relative width 1/200 (`money_bucket`: a deterministic mergeable
  quantile sketch, the bucket mapping of DDSketch, Masson, Rim & Lee 2019); counts add.
- Purchase models: a bottom-k sample of the buyers by a hash of their id (Cohen & Kaplan
  2007): each partition keeps its k smallest hashes, and the k smallest of the union are the
  bottom-k sample of the whole population, a uniform sample; with at most k buyers, all.
- Churn: the latest labels (features at the moment the user turned silent, churned or
  not) by event time, at most `max_labels`; the merge keeps the latest of all.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.btyd_holdout import BuyerRow

# Net cents up to this are their own bucket; above, buckets grow by GAMMA each.
EXACT_CENTS = 1_000
MONEY_ACCURACY = 0.005
_GAMMA = (1 + MONEY_ACCURACY) / (1 - MONEY_ACCURACY)


def _bounds() -> tuple[int, ...]:
    out = list(range(EXACT_CENTS + 1))
    k = math.ceil(math.log(EXACT_CENTS + 1) / math.log(_GAMMA))
    while out[-1] < 10**15:
        bound = math.ceil(_GAMMA**k)
        if bound > out[-1]:
            out.append(bound)
        k += 1
    return tuple(out)


MONEY_BOUNDS = _bounds()  # ascending integer lower bounds of the net-cents buckets


def money_bucket(cents: int) -> int:
    """The lower bound (cents) of the bucket `cents` falls in: the value itself up to
    `EXACT_CENTS` (0 and below included), above within 1% below it."""
    if cents <= EXACT_CENTS:
        return cents
    return MONEY_BOUNDS[bisect_right(MONEY_BOUNDS, cents) - 1]


def user_hash(user_id: str) -> int:
    """A 64-bit hash of a user id, the same in every process (the bottom-k sample's order)."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "big")


# A churn label: event time (ms), user hash, features at silence, churned (1) or back (0).
Label = tuple[int, int, dict[str, float], int]


@dataclass
class Summary:
    """The population models' inputs from a set of users (one partition, or a merge)."""

    recency: Counter[int] = field(default_factory=Counter)  # last paid day: buyers
    frequency: Counter[int] = field(default_factory=Counter)  # paid orders: buyers
    monetary: Counter[int] = field(default_factory=Counter)  # net-cents bucket: buyers
    sample: list[tuple[int, BuyerRow]] = field(default_factory=list)  # (hash, row), by hash
    labels: list[Label] = field(default_factory=list)  # oldest first
    clock_ms: int = 0  # the latest event time of the users
    users: int = 0

    @property
    def buyers(self) -> int:
        return sum(self.frequency.values())

    def items(self, dimension: str) -> list[tuple[int, int]]:
        """(value, buyers) in ascending order of value, for the RFM scale."""
        counts: Counter[int] = getattr(self, dimension)
        return sorted((v, c) for v, c in counts.items() if c > 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "recency": sorted(self.recency.items()),
            "frequency": sorted(self.frequency.items()),
            "monetary": sorted(self.monetary.items()),
            "sample": [[h, list(row[:5]), list(row[5]), row[6]] for h, row in self.sample],
            "labels": self.labels,
            "clock_ms": self.clock_ms,
            "users": self.users,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        """Inverse of `to_dict`; ValueError on a record of another version."""
        if data.get("version") != 1:
            raise ValueError(f"unsupported population summary version {data.get('version')!r}")
        sample = [
            (int(h), (*(int(v) for v in head), tuple(int(t) for t in after), before))
            for h, head, after, before in data["sample"]
        ]
        return cls(
            recency=Counter({int(v): int(c) for v, c in data["recency"]}),
            frequency=Counter({int(v): int(c) for v, c in data["frequency"]}),
            monetary=Counter({int(v): int(c) for v, c in data["monetary"]}),
            sample=sample,
            labels=[(int(a), int(h), dict(f), int(y)) for a, h, f, y in data["labels"]],
            clock_ms=int(data["clock_ms"]),
            users=int(data["users"]),
        )


def summarise(
    rfm: Iterable[tuple[int, int, int]],
    buyers: Iterable[tuple[str, BuyerRow]],
    labels: Sequence[Label],
    clock_ms: int,
    users: int,
    sample_size: int,
    max_labels: int,
) -> Summary:
    """One set of users' summary: `rfm` (last paid day, paid orders, net cents) per buyer,
    each buyer's purchase row by user id, their churn labels, their latest event time."""
    out = Summary(clock_ms=clock_ms, users=users)
    for day, orders, cents in rfm:
        out.recency[day] += 1
        out.frequency[orders] += 1
        out.monetary[money_bucket(cents)] += 1
    hashed = ((user_hash(user_id), row) for user_id, row in buyers)
    out.sample = heapq.nsmallest(sample_size, hashed, key=lambda item: item[0])
    out.labels = _latest(labels, max_labels)
    return out


def _latest(labels: Iterable[Label], limit: int) -> list[Label]:
    """The `limit` latest labels by (event time, user hash), oldest first."""
    chosen = heapq.nlargest(limit, labels, key=lambda label: (label[0], label[1], label[3]))
    return sorted(chosen, key=lambda label: (label[0], label[1], label[3]))


def merge(parts: Iterable[Summary], sample_size: int, max_labels: int) -> Summary:
    """The summary of the union of disjoint sets of users (partitions)."""
    out = Summary()
    samples: list[Iterable[tuple[int, BuyerRow]]] = []
    labels: list[Label] = []
    for part in parts:
        out.recency.update(part.recency)
        out.frequency.update(part.frequency)
        out.monetary.update(part.monetary)
        samples.append(part.sample)
        labels.extend(part.labels)
        out.clock_ms = max(out.clock_ms, part.clock_ms)
        out.users += part.users
    everyone = (item for sample in samples for item in sample)
    out.sample = heapq.nsmallest(sample_size, everyone, key=lambda item: item[0])
    out.labels = _latest(labels, max_labels)
    return out
