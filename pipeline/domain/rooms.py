"""Room rules: a live room's comments over a sliding window on the event clock.

Each room keeps the comments of its longest rule window (plus the lateness allowed) with their
sentiment, and its firing marks. The room's clock is the latest comment time seen; at each
comment the rules see the comments of the window that ends at the clock. A comment seen before
(the same event id: a resend, or a replay) counts once; one older than the window and the
lateness allowed is too late to count and is reported as such.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.triggers import Fired, Marks, Rule, evaluate


@dataclass
class RoomWindow:
    """One room's recent comments (time, event id, negative) in time order, and its marks."""

    room_id: str
    entries: list[tuple[int, str, bool]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    clock_ms: int | None = None
    marks: Marks = field(default_factory=Marks)

    def counts(self, window_ms: int) -> dict[str, int | float | None]:
        """Comments, negative ones and their share in the window ending at the clock."""
        if self.clock_ms is None:
            return {"comments": 0, "negative": 0, "negative_share": None}
        lo = bisect.bisect_right(self.entries, (self.clock_ms - window_ms, "\uffff", True))
        inside = self.entries[lo:]
        negative = sum(1 for _, _, n in inside if n)
        share = round(negative / len(inside), 4) if inside else None
        return {"comments": len(inside), "negative": negative, "negative_share": share}

    def add(
        self, event_id: str, ts_ms: int, negative: bool, rules: tuple[Rule, ...], lateness_ms: int
    ) -> tuple[str, list[Fired]]:
        """Count one comment and evaluate the rules; returns its status and what fired.

        Status: `counted`, `duplicate`, or `late` (older than every window allows).
        """
        if event_id in self.ids:
            return "duplicate", []
        keep_ms = max((r.window_ms for r in rules), default=0) + lateness_ms
        if self.clock_ms is not None and ts_ms <= self.clock_ms - keep_ms:
            return "late", []
        bisect.insort(self.entries, (ts_ms, event_id, negative))
        self.ids.add(event_id)
        self.clock_ms = ts_ms if self.clock_ms is None else max(self.clock_ms, ts_ms)
        cut = bisect.bisect_right(self.entries, (self.clock_ms - keep_ms, "\uffff", True))
        for _, old, _ in self.entries[:cut]:
            self.ids.discard(old)
        del self.entries[:cut]
        fired: list[Fired] = []
        for rule in rules:
            values = self.counts(rule.window_ms)
            fired += evaluate((rule,), self.marks, values, "room", self.room_id, self.clock_ms)
        return "counted", fired

    def to_dict(self) -> dict[str, Any]:
        return {
            "room_id": self.room_id,
            "entries": [list(e) for e in self.entries],
            "clock_ms": self.clock_ms,
            "marks": self.marks.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoomWindow:
        entries = [(int(t), str(i), bool(n)) for t, i, n in data.get("entries") or []]
        return cls(
            room_id=data["room_id"],
            entries=entries,
            ids={e[1] for e in entries},
            clock_ms=data.get("clock_ms"),
            marks=Marks.from_dict(data.get("marks")),
        )
