"""Lifecycle stages (SPEC section 4) as a pure function of a user's history and a time."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

DAY_MS = 86_400_000


class Stage(StrEnum):
    POTENTIAL = "potential"
    NEW = "new"
    ACTIVE = "active"
    SILENT = "silent"
    CHURNED = "churned"


REACTIVATED_FROM = frozenset({Stage.SILENT, Stage.CHURNED})


@dataclass(frozen=True, slots=True)
class StageRules:
    """Thresholds of the stage rules, in days; defaults are the spec's."""

    active_window_days: float = 30.0
    active_min_interactions: int = 10
    new_window_days: float = 30.0
    silent_after_days: float = 30.0
    churned_after_days: float = 90.0
    # Most interaction times kept per user (the newest): a late event derives the stage
    # history again exactly from the `active_min_interactions`-th oldest kept one on.
    kept_interactions: int = 1024
    # Kept whatever the watermark says (the newest).
    min_kept_interactions: int = 128
    # The thresholds in epoch ms, worked out once (they are read on every event).
    active_window_ms: int = field(init=False, repr=False, compare=False)
    new_window_ms: int = field(init=False, repr=False, compare=False)
    silent_ms: int = field(init=False, repr=False, compare=False)
    churned_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        days = (
            self.active_window_days,
            self.new_window_days,
            self.silent_after_days,
            self.churned_after_days,
        )
        if not all(math.isfinite(d) for d in days):
            raise ValueError("stage thresholds must be finite numbers of days")
        if self.active_min_interactions < 1:
            raise ValueError("active_min_interactions must be at least 1")
        if self.kept_interactions < self.active_min_interactions:
            raise ValueError("kept_interactions must be at least active_min_interactions")
        if not 0 < self.silent_after_days < self.churned_after_days:
            raise ValueError("need 0 < silent_after_days < churned_after_days")
        if self.active_window_days <= 0 or self.new_window_days <= 0:
            raise ValueError("windows must be positive")
        for name, threshold in (
            ("active_window_ms", self.active_window_days),
            ("new_window_ms", self.new_window_days),
            ("silent_ms", self.silent_after_days),
            ("churned_ms", self.churned_after_days),
        ):
            object.__setattr__(self, name, int(threshold * DAY_MS))


def stage_at(
    rules: StageRules,
    at_ms: int,
    last_interaction_ms: int | None,
    recent_interactions_ms: list[int],
    first_paid_ms: int | None,
) -> Stage | None:
    """The stage at `at_ms`, given what happened up to then; None before any interaction.

    Precedence: churned, silent (idle time), active (enough recent interactions), new (first
    paid order inside the new window), potential (never paid). A buyer past the new window who
    still interacts, but below the active threshold, counts as active: the spec's five stages
    leave no other place for them, and the silent rule takes them once they go quiet.
    `recent_interactions_ms` holds at least the last `active_min_interactions` interaction
    times, oldest first.
    """
    if last_interaction_ms is None:
        return None
    idle = at_ms - last_interaction_ms
    if idle >= rules.churned_ms:
        return Stage.CHURNED
    if idle >= rules.silent_ms:
        return Stage.SILENT
    n = rules.active_min_interactions
    if (
        len(recent_interactions_ms) >= n
        and at_ms - recent_interactions_ms[-n] < rules.active_window_ms
    ):
        return Stage.ACTIVE
    if first_paid_ms is None:
        return Stage.POTENTIAL
    if at_ms - first_paid_ms < rules.new_window_ms:
        return Stage.NEW
    return Stage.ACTIVE


def change_points(
    rules: StageRules,
    last_interaction_ms: int | None,
    recent_interactions_ms: list[int],
    first_paid_ms: int | None,
) -> list[int]:
    """Times after which the stage may change with no new event, in order."""
    if last_interaction_ms is None:
        return []
    points = [last_interaction_ms + rules.silent_ms, last_interaction_ms + rules.churned_ms]
    n = rules.active_min_interactions
    if len(recent_interactions_ms) >= n:
        points.append(recent_interactions_ms[-n] + rules.active_window_ms)
    if first_paid_ms is not None:
        points.append(first_paid_ms + rules.new_window_ms)
    return sorted(points)
