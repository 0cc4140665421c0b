"""Online RFM (SPEC section 4): the exact buyer population, 1-5 scores against a version of it
(`rfm_scale`), segment and class A/B/C."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.domain.rfm_scale import RfmScale, score_of, thresholds

RfmClass = Literal["A", "B", "C"]


class ValueDistribution:
    """Exact multiset of ints: distinct values in a sorted list (bisect) plus a count per value.

    add/remove O(log d) search, plus a C-level list insert/delete (a memmove of d pointers,
    microseconds for d = 10^6) when a value appears or disappears; `items` O(d). Memory O(d).
    """

    def __init__(self) -> None:
        self._vals: list[int] = []
        self._counts: dict[int, int] = {}
        self._n = 0

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
        if v in self._counts:
            self._counts[v] += 1
        else:
            self._vals.insert(bisect_left(self._vals, v), v)
            self._counts[v] = 1
        self._n += 1

    def remove(self, v: int) -> None:
        """Remove one occurrence of `v`; ValueError if `v` is not present."""
        if v not in self._counts:
            raise ValueError(f"cannot remove {v}: value not in the distribution")
        self._counts[v] -= 1
        if self._counts[v] == 0:
            del self._vals[bisect_left(self._vals, v)]
            del self._counts[v]
        self._n -= 1


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


SEGMENTS = (
    "Champions", "At risk", "Loyal", "Need attention", "Promising", "Potential loyalist",
    "New customer", "Hibernating",
)  # fmt: skip


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


def score_on(
    scale: RfmScale,
    values: RfmValues,
    as_of_day: int,
    *,
    a_total: int = 12,
    a_min_r: int = 4,
    b_total: int = 8,
) -> RfmScore:
    """`values` scored against one version of the population (`RfmScale`); recent days
    score high."""
    r = score_of(values.last_paid_day, scale.recency)
    f = score_of(values.frequency, scale.frequency)
    m = score_of(values.monetary_cents, scale.monetary)
    return RfmScore(
        recency_days=float(as_of_day - values.last_paid_day),
        frequency=values.frequency,
        monetary=values.monetary_cents / 100,
        r=r,
        f=f,
        m=m,
        segment=segment(r, f, m),
        rfm_class=rfm_class(r, f, m, a_total=a_total, a_min_r=a_min_r, b_total=b_total),
    )  # fmt: skip


class RfmPopulation:
    """R (last paid day), F (paid orders) and M (net cents) of every paying user, scored 1-5
    against a version of the population (`scale`), taken again once the population has
    changed by `REFRESH_SHARE` of its buyers (at least `REFRESH_MIN` changes)."""

    REFRESH_SHARE = 0.01
    REFRESH_MIN = 50

    def __init__(self, *, a_total: int = 12, a_min_r: int = 4, b_total: int = 8) -> None:
        self.recency = ValueDistribution()
        self.frequency = ValueDistribution()
        self.monetary = ValueDistribution()
        self._thresholds = {"a_total": a_total, "a_min_r": a_min_r, "b_total": b_total}
        self._scale: RfmScale | None = None
        self._changes = 0  # since the scale was taken
        self._versions = 0

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
        self._changes += 1

    def scale(self, fresh: bool = False) -> RfmScale:
        """The current version of the population's thresholds (a new one when the population
        has changed enough since, or when `fresh`); ValueError when it is empty."""
        due = max(self.REFRESH_MIN, int(len(self) * self.REFRESH_SHARE))
        if self._scale is None or self._changes >= due or (fresh and self._changes):
            self._versions += 1
            self._scale = RfmScale(
                recency=thresholds(self.recency.items()),
                frequency=thresholds(self.frequency.items()),
                monetary=thresholds(self.monetary.items()),
                version=self._versions,
                buyers=len(self),
            )
            self._changes = 0
        return self._scale

    @property
    def version(self) -> int:
        """The version of the scale scores are taken against (0: none yet)."""
        return self._scale.version if self._scale is not None else 0

    def score(self, values: RfmValues, as_of_day: int) -> RfmScore:
        """Score `values` against the current version of the (non-empty) population."""
        return score_on(self.scale(), values, as_of_day, **self._thresholds)

    def score_against(self, scale: RfmScale, values: RfmValues, as_of_day: int) -> RfmScore:
        """Score `values` against a given scale (the whole population's, published)."""
        return score_on(scale, values, as_of_day, **self._thresholds)

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
