"""A user's stage history as a function of the set of their interactions, over a time range.

The stage at time t is `stages.stage_at` with every interaction at or before t (and the first
paid order, if at or before t). Between two candidate points it cannot change: the candidates
are the interaction times, each interaction plus the silent, churned and active windows, and
the first paid order plus the new window. So the history over a range is the stage at each
candidate in it, keeping the changes: the same whatever order the interactions arrived in.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from pipeline.domain.stages import Stage, StageRules, stage_at

# (from stage, to stage, event time in ms)
Change = tuple[Stage | None, Stage, int]


def stage_of(
    rules: StageRules, at_ms: int, interactions: list[int], first_paid_ms: int | None
) -> Stage | None:
    """The stage at `at_ms` given every interaction time (sorted, ascending) of the user."""
    i = bisect_right(interactions, at_ms)
    if i == 0:
        return None
    paid = first_paid_ms if first_paid_ms is not None and first_paid_ms <= at_ms else None
    n = rules.active_min_interactions
    return stage_at(rules, at_ms, interactions[i - 1], interactions[max(0, i - n) : i], paid)


def candidates(
    rules: StageRules,
    interactions: list[int],
    first_paid_ms: int | None,
    from_ms: int,
    until_ms: int,
) -> list[int]:
    """Sorted distinct times in [from_ms, until_ms] at which the stage may change."""
    points: set[int] = set()
    # An interaction's own time and its windows' ends: for each span, the interactions
    # whose end falls in the range (found by bisection, so a short range costs little).
    for span in (0, rules.silent_ms, rules.churned_ms, rules.active_window_ms):
        low = bisect_left(interactions, from_ms - span)
        high = bisect_right(interactions, until_ms - span)
        points.update(x + span for x in interactions[low:high])
    if first_paid_ms is not None:
        point = first_paid_ms + rules.new_window_ms
        if from_ms <= point <= until_ms:
            points.add(point)
    return sorted(points)


def derive(
    rules: StageRules,
    interactions: list[int],
    first_paid_ms: int | None,
    stage_before: Stage | None,
    from_ms: int,
    until_ms: int,
) -> list[Change]:
    """The stage changes in [from_ms, until_ms], starting from `stage_before` (the stage just
    before `from_ms`). `interactions` must hold every interaction time that can matter at a
    point of the range: the last one before it and the `active_min_interactions` before each
    point (the caller keeps a bounded list and derives only where it is complete).

    >>> rules = StageRules(silent_after_days=30, churned_after_days=90)
    >>> [(str(a), str(b), at // 86_400_000) for a, b, at in derive(rules, [0], None, None, 0, 200 * 86_400_000)]
    [('None', 'potential', 0), ('potential', 'silent', 30), ('silent', 'churned', 90)]
    """  # noqa: E501
    out: list[Change] = []
    stage = stage_before
    for point in candidates(rules, interactions, first_paid_ms, from_ms, until_ms):
        now = stage_of(rules, point, interactions, first_paid_ms)
        if now is not None and now != stage:
            out.append((stage, now, point))
            stage = now
    return out
