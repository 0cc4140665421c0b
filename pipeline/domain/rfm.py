"""Online RFM (SPEC section 4): exact population quantiles, 1-5 scores, segment and class A/B/C."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

RfmClass = Literal["A", "B", "C"]


class ValueDistribution:
    """Exact multiset of ints: distinct values in a sorted list (bisect) plus a count per value.

    Complexity (n values, d distinct): add/remove O(log d) search + O(k) per tracked k to move
    its cut points (each moves at most one rank); a value that appears or disappears also costs
    one C-level list insert/delete (memmove of d pointers, microseconds for d = 10^6).
    `quantile_cuts(k)` is O(d) the first time for a k, O(1) after (cuts are kept incrementally);
    `score` is O(log k). Memory O(d).
    """

    def __init__(self) -> None:
        self._vals: list[int] = []
        self._counts: dict[int, int] = {}
        self._n = 0
        # k -> (pos, below): cut j sits on distinct value vals[pos[j]], with below[j] values
        # strictly under it and below[j] <= rank_j < below[j] + count(vals[pos[j]]).
        self._tracked: dict[int, tuple[list[int], list[int]]] = {}
        self._cache: dict[int, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return self._n

    def __contains__(self, v: object) -> bool:
        return v in self._counts

    def items(self) -> list[tuple[int, int]]:
        """(value, count) pairs in ascending order of value."""
        return [(v, self._counts[v]) for v in self._vals]

    @classmethod
    def from_items(cls, items: Iterable[Sequence[int]]) -> ValueDistribution:
        """Build from (value, count) pairs in any order, in O(d log d)."""
        dist = cls()
        for v, c in items:
            if int(c) < 1:
                raise ValueError(f"count of {v} must be >= 1, got {c}")
            dist._counts[int(v)] = dist._counts.get(int(v), 0) + int(c)
        dist._vals = sorted(dist._counts)
        dist._n = sum(dist._counts.values())
        return dist

    def add(self, v: int) -> None:
        """Add one occurrence of `v`."""
        i = bisect_left(self._vals, v)
        new = v not in self._counts
        if new:
            self._vals.insert(i, v)
            self._counts[v] = 1
        else:
            self._counts[v] += 1
        self._n += 1
        self._move_cuts(i, 1, new)

    def remove(self, v: int) -> None:
        """Remove one occurrence of `v`; ValueError if `v` is not present."""
        if v not in self._counts:
            raise ValueError(f"cannot remove {v}: value not in the distribution")
        i = bisect_left(self._vals, v)
        self._counts[v] -= 1
        gone = self._counts[v] == 0
        if gone:
            del self._vals[i]
            del self._counts[v]
        self._n -= 1
        self._move_cuts(i, -1, gone)

    def _move_cuts(self, i: int, delta: int, shifted: bool) -> None:
        """Keep tracked cuts exact after adding (delta 1) or removing (-1) the value at index i;
        `shifted`: that distinct value was inserted or deleted. O(k) per tracked k."""
        self._cache.clear()
        vals, counts, n = self._vals, self._counts, self._n
        for k, (pos, below) in self._tracked.items():
            if n == 0:
                pos[:] = below[:] = [0] * (k - 1)
                continue
            for j in range(k - 1):
                p, b = pos[j], below[j]
                # A value under the cut changed. At i == p, (p, b) stays valid as is: after an
                # insert it points at v with the same count under it; after a delete, at the
                # next value (or past the end, which the first loop below steps back from).
                if i < p:
                    b += delta
                    if shifted:
                        p += delta
                rank = ((j + 1) * n + k - 1) // k - 1  # ceil((j+1) * n / k) - 1
                while rank < b:
                    p -= 1
                    b -= counts[vals[p]]
                while rank >= b + counts[vals[p]]:
                    b += counts[vals[p]]
                    p += 1
                pos[j], below[j] = p, b

    def quantile_cuts(self, k: int = 5) -> tuple[int, ...]:
        """The k-1 exact empirical quantiles (nearest rank): cut j is the sorted value at
        0-based rank ceil(j*n/k) - 1. ValueError if empty or k < 1."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if self._n == 0:
            raise ValueError("no quantiles of an empty distribution")
        cached = self._cache.get(k)
        if cached is not None:
            return cached
        if k not in self._tracked:
            pos, below = self._tracked[k] = ([0] * (k - 1), [0] * (k - 1))
            cum = list(accumulate(self._counts[v] for v in self._vals))
            for j in range(k - 1):
                rank = ((j + 1) * self._n + k - 1) // k - 1
                p = bisect_left(cum, rank + 1)  # first distinct value whose cumulative > rank
                pos[j], below[j] = p, cum[p] - self._counts[self._vals[p]]
        cuts = tuple(self._vals[p] for p in self._tracked[k][0])
        self._cache[k] = cuts
        return cuts

    def score(self, v: int, k: int = 5) -> int:
        """1..k: 1 + number of cuts strictly under `v`, which equals
        min(k, 1 + floor(k * #(values < v) / n)); ties share a score, the minimum scores 1."""
        return 1 + bisect_left(self.quantile_cuts(k), v)


@dataclass(frozen=True, slots=True)
class RfmValues:
    """Raw RFM inputs of a user with at least one paid order."""

    last_paid_day: int
    frequency: int
    monetary_cents: int

    def __post_init__(self) -> None:
        if self.frequency < 1:
            raise ValueError("RfmValues is only for users with at least one paid order")


@dataclass(frozen=True, slots=True)
class RfmScore:
    """A user's RFM scores against the population; monetary in currency units."""

    recency_days: float
    frequency: int
    monetary: float
    r: int
    f: int
    m: int
    segment: str
    rfm_class: str


def segment(r: int, f: int, m: int) -> str:
    """Segment of 1-5 scores; first matching rule wins (total over all 125 combinations):

    1. Champions: r>=4, f>=4, m>=4      5. Promising: r==3, f<=2
    2. At risk: r<=2, f>=3              6. Potential loyalist: r>=4, f in 2..3
    3. Loyal: f>=4 (r>=3)               7. New customer: r>=4, f==1
    4. Need attention: r==3, f>=3       8. Hibernating: r<=2, f<=2
    At risk precedes Loyal: a frequent buyer who has lapsed (r<=2) is at risk, not loyal.
    """
    if not all(1 <= s <= 5 for s in (r, f, m)):
        raise ValueError(f"RFM scores must be in 1..5, got {(r, f, m)}")
    if r >= 4 and f >= 4 and m >= 4:
        return "Champions"
    if r <= 2:
        return "At risk" if f >= 3 else "Hibernating"
    if f >= 4:
        return "Loyal"
    if r == 3:
        return "Need attention" if f >= 3 else "Promising"
    return "Potential loyalist" if f >= 2 else "New customer"


def rfm_class(
    r: int, f: int, m: int, *, a_total: int = 12, a_min_r: int = 4, b_total: int = 8
) -> RfmClass:
    """A: r+f+m >= a_total and r >= a_min_r ("R score > 3 gets priority"); B: total >= b_total;
    C otherwise."""
    total = r + f + m
    if total >= a_total and r >= a_min_r:
        return "A"
    return "B" if total >= b_total else "C"


class RfmPopulation:
    """R (last paid day), F (paid orders) and M (net cents) of every paying user, scored 1-5."""

    def __init__(self, *, a_total: int = 12, a_min_r: int = 4, b_total: int = 8) -> None:
        self.recency = ValueDistribution()
        self.frequency = ValueDistribution()
        self.monetary = ValueDistribution()
        self._thresholds = {"a_total": a_total, "a_min_r": a_min_r, "b_total": b_total}

    def __len__(self) -> int:
        return len(self.frequency)

    def update(self, old: RfmValues | None, new: RfmValues | None) -> None:
        """Move a user from `old` to `new` (None: not in the population); atomic on error."""
        if old == new:
            return
        if old is not None:
            if not (
                old.last_paid_day in self.recency
                and old.frequency in self.frequency
                and old.monetary_cents in self.monetary
            ):
                raise ValueError(f"cannot remove {old}: not in the population")
            self.recency.remove(old.last_paid_day)
            self.frequency.remove(old.frequency)
            self.monetary.remove(old.monetary_cents)
        if new is not None:
            self.recency.add(new.last_paid_day)
            self.frequency.add(new.frequency)
            self.monetary.add(new.monetary_cents)

    def score(self, values: RfmValues, as_of_day: int) -> RfmScore:
        """Score `values` against the current (non-empty) population; recent days score high."""
        r = self.recency.score(values.last_paid_day)
        f = self.frequency.score(values.frequency)
        m = self.monetary.score(values.monetary_cents)
        return RfmScore(
            recency_days=float(as_of_day - values.last_paid_day),
            frequency=values.frequency,
            monetary=values.monetary_cents / 100,
            r=r,
            f=f,
            m=m,
            segment=segment(r, f, m),
            rfm_class=rfm_class(r, f, m, **self._thresholds),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly checkpoint: [value, count] pairs per dimension."""
        return {
            "version": 1,
            "recency": [list(p) for p in self.recency.items()],
            "frequency": [list(p) for p in self.frequency.items()],
            "monetary": [list(p) for p in self.monetary.items()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], **thresholds: int) -> RfmPopulation:
        """Inverse of `to_dict`; class thresholds are configuration, passed again here."""
        if data.get("version") != 1:
            raise ValueError(f"unsupported RFM checkpoint version {data.get('version')!r}")
        pop = cls(**thresholds)
        pop.recency = ValueDistribution.from_items(data["recency"])
        pop.frequency = ValueDistribution.from_items(data["frequency"])
        pop.monetary = ValueDistribution.from_items(data["monetary"])
        if not len(pop.recency) == len(pop.frequency) == len(pop.monetary):
            raise ValueError("RFM checkpoint dimensions have different sizes")
        return pop
