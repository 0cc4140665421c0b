"""An index of the current scores for lists and counts: each user's stage and RFM values,
kept as the scores view applies records.

Users are listed in ascending order of `user_id` (the sort key); a cursor is the last
`user_id` of a page, so pages stay stable while users come and go. Segment and class are
those of the user's RFM values against the latest published scale (as the API serves each
document), computed from three per-dimension score lookups.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sortedcontainers import SortedList

from pipeline.domain.population import money_bucket
from pipeline.domain.rfm import rfm_class, segment
from pipeline.domain.rfm_scale import RfmScale, score_of
from pipeline.domain.stages import Stage

DAY_S = 86_400
STAGES = tuple(stage.value for stage in Stage)
Values = tuple[int, int, int]  # last paid day (since 1970-01-01), paid orders, net-cents bucket


class BadCursor(ValueError):
    """A cursor this service did not hand out."""


def encode_cursor(user_id: str) -> str:
    return base64.urlsafe_b64encode(user_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadCursor(f"cursor {cursor!r} is not one this service handed out") from exc
    if not decoded:
        raise BadCursor(f"cursor {cursor!r} is not one this service handed out")
    return decoded


def _values(document: dict[str, Any]) -> Values | None:
    """Last paid day, paid orders and net cents in their bucket (`money_bucket`: a
    published scale's money thresholds are bucket bounds, so the bucket scores as the value
    does, and far fewer distinct values are counted)."""
    paid = document.get("last_paid_at")
    if not paid or not document.get("order_count"):
        return None
    day = int(datetime.fromisoformat(paid).timestamp() // DAY_S)
    cents = money_bucket(round(float(document["monetary"]) * 100))
    return day, int(document["order_count"]), cents


@dataclass(frozen=True)
class Cell:
    """A user's RFM scores and what they make."""

    r: int
    f: int
    m: int

    @property
    def segment(self) -> str:
        return segment(self.r, self.f, self.m)

    @property
    def rfm_class(self) -> str:
        return rfm_class(self.r, self.f, self.m)


class UserIndex:
    """Stage and RFM values per user, with users sorted by id overall and per stage."""

    def __init__(self) -> None:
        self.stage: dict[str, str | None] = {}
        self.values: dict[str, Values] = {}
        self.ids: SortedList = SortedList()
        self.by_stage: dict[str | None, SortedList] = {}
        self.combos: Counter[Values] = Counter()  # distinct RFM values: buyers
        # Segment and class as each document has them, for before any scale is published
        # (then documents are scored on their worker's own scale and served so).
        self.own: dict[str, tuple[str, str]] = {}
        # Buyers by (r, f, m) against one scale, kept up to date record by record; taken
        # again from `combos` when another scale is asked for.
        self._cells: Counter[tuple[int, int, int]] = Counter()
        self._cells_scale: RfmScale | None = None

    def __len__(self) -> int:
        return len(self.stage)

    def apply(self, user_id: str, raw: bytes | None) -> None:
        """A record of the scores topic: the user's latest document, or None (erased)."""
        self._remove(user_id)
        if raw is None:
            return
        document = orjson.loads(raw)
        stage = document.get("stage")
        self.stage[user_id] = stage
        self.ids.add(user_id)
        self.by_stage.setdefault(stage, SortedList()).add(user_id)
        rfm = document.get("rfm")
        if rfm:
            self.own[user_id] = (rfm["segment"], rfm["rfm_class"])
        values = _values(document)
        if values is not None:
            self.values[user_id] = values
            self.combos[values] += 1
            if self._cells_scale is not None:
                self._cells[self._scores(values, self._cells_scale)] += 1

    def _remove(self, user_id: str) -> None:
        if user_id not in self.stage:
            return
        stage = self.stage.pop(user_id)
        self.own.pop(user_id, None)
        self.ids.remove(user_id)
        self.by_stage[stage].remove(user_id)
        values = self.values.pop(user_id, None)
        if values is not None:
            self.combos[values] -= 1
            if not self.combos[values]:
                del self.combos[values]
            if self._cells_scale is not None:
                self._cells[self._scores(values, self._cells_scale)] -= 1

    @staticmethod
    def _scores(values: Values, scale: RfmScale) -> tuple[int, int, int]:
        day, orders, cents = values
        return (
            score_of(day, scale.recency), score_of(orders, scale.frequency),
            score_of(cents, scale.monetary),
        )  # fmt: skip

    def cell(self, user_id: str, scale: RfmScale | None) -> Cell | None:
        values = self.values.get(user_id)
        if values is None or scale is None:
            return None
        return Cell(*self._scores(values, scale))

    def _labels(self, user_id: str, scale: RfmScale | None) -> tuple[str | None, str | None]:
        """Segment and class against `scale`, or as the document has them without one."""
        if scale is None:
            return self.own.get(user_id, (None, None))
        cell = self.cell(user_id, scale)
        return (cell.segment, cell.rfm_class) if cell else (None, None)

    def page(
        self,
        scale: RfmScale | None,
        *,
        stage: str | None = None,
        segment_: str | None = None,
        class_: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` users after `after` matching every filter given (`stage` "none":
        users with no stage yet), and the cursor of the next page (None after the last)."""
        key = None if stage == "none" else stage
        source = self.ids if stage is None else self.by_stage.get(key, SortedList())
        start = 0 if after is None else source.bisect_right(after)
        out: list[dict[str, Any]] = []
        last = None
        for user_id in source.islice(start):
            last = user_id
            seg, cls = self._labels(user_id, scale)
            if segment_ is not None and seg != segment_:
                continue
            if class_ is not None and cls != class_:
                continue
            out.append({"user_id": user_id, "stage": self.stage[user_id], "segment": seg,
                        "rfm_class": cls})  # fmt: skip
            if len(out) == limit:
                break
        more = last is not None and source.bisect_right(last) < len(source)
        return out, (encode_cursor(last) if more and last is not None else None)

    def counts(self, scale: RfmScale | None) -> dict[str, Any]:
        """Total users and counts by stage, segment and class (buyers against `scale`)."""
        segments: Counter[str] = Counter()
        classes: Counter[str] = Counter()
        if scale is None:
            segments.update(seg for seg, _ in self.own.values())
            classes.update(cls for _, cls in self.own.values())
        else:
            if scale != self._cells_scale:
                self._rebuild(scale)
            for (rs, fs, ms), n in self._cells.items():
                if n:
                    segments[segment(rs, fs, ms)] += n
                    classes[rfm_class(rs, fs, ms)] += n
        return {
            "total_users": len(self.stage),
            # Every stage, zeros included; "none": users with no stage yet (touches only).
            "by_stage": {s: len(self.by_stage.get(s, ())) for s in STAGES}
            | {"none": len(self.by_stage.get(None, ()))},
            "buyers": len(self.values),
            "by_segment": dict(sorted(segments.items())),
            "by_class": dict(sorted(classes.items())),
            "rfm_version": f"rfm-{scale.version}" if scale is not None else None,
        }

    def _rebuild(self, scale: RfmScale) -> None:
        """Buyers by (r, f, m) against `scale`: each dimension's distinct values scored once."""
        r = {d: score_of(d, scale.recency) for d in {v[0] for v in self.combos}}
        f = {o: score_of(o, scale.frequency) for o in {v[1] for v in self.combos}}
        m = {c: score_of(c, scale.monetary) for c in {v[2] for v in self.combos}}
        cells: Counter[tuple[int, int, int]] = Counter()
        for (day, orders, cents), n in self.combos.items():
            cells[r[day], f[orders], m[cents]] += n
        self._cells, self._cells_scale = cells, scale

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)
