"""A user's stage history as a function of the set of their interactions, over a time range,
and its transitions kept on a user's state: moved on (`advance`), derived again after a late
event (`rederive`), pruned where no late event can change it.

The stage at time t is `stages.stage_at` with every interaction at or before t (and the first
paid order, if at or before t). Between two candidate points it cannot change: the candidates
are the interaction times, each interaction plus the silent, churned and active windows, and
the first paid order plus the new window. So the history over a range is the stage at each
candidate in it, keeping the changes: the same whatever order the interactions arrived in.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.domain.stages import REACTIVATED_FROM, Stage, StageRules, change_points, stage_at

if TYPE_CHECKING:
    from pipeline.domain.state import UserState

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


@dataclass(frozen=True, slots=True)
class Transition:
    """A stage change of one user at an event time."""

    user_id: str
    from_stage: Stage | None
    to_stage: Stage
    at_ms: int
    # A correction: this transition, published before, is no longer part of the history (a
    # late event changed what happened from some time on).
    retracted: bool = False

    @property
    def is_reactivation(self) -> bool:
        return self.from_stage in REACTIVATED_FROM and self.to_stage not in REACTIVATED_FROM


def stage_now(state: UserState, rules: StageRules, at_ms: int) -> Stage | None:
    return stage_at(
        rules, at_ms, state.last_interaction_ms, state.recent_interactions_ms, state.first_paid_ms
    )


def move(state: UserState, to: Stage | None, at_ms: int, out: list[Transition]) -> None:
    if to is None or to == state.stage:
        return
    transition = Transition(state.user_id, state.stage, to, at_ms)
    if transition.is_reactivation:
        state.reactivations += 1
    state.history.append([state.stage, to, at_ms])
    state.stage = to
    state.stage_since_ms = at_ms
    out.append(transition)


def _exact_from(state: UserState, rules: StageRules) -> int | None:
    """The earliest time the kept interactions derive the stage exactly from (None: all
    of them are kept, so any time)."""
    kept = state.recent_interactions_ms
    if state.interactions <= len(kept):
        return None
    return kept[rules.active_min_interactions - 1]


def prune(state: UserState, rules: StageRules) -> None:
    """Drop history no late event can change any more (before the exact horizon), keeping
    the last transition before it."""
    horizon = _exact_from(state, rules)
    history = state.history
    if horizon is None or len(history) < 2:
        return
    cut = 0
    while cut + 1 < len(history) and history[cut + 1][2] < horizon:
        cut += 1
    if cut:
        del history[:cut]


def rederive(state: UserState, rules: StageRules, from_ms: int) -> list[Transition]:
    """Derive the history again from `from_ms` up to the state's clock after a late event;
    returns the corrections: transitions retracted, then transitions added."""
    if state.clock_ms is None:
        return []
    start = from_ms
    horizon = _exact_from(state, rules)
    if horizon is not None and start < horizon:
        state.history_gaps += 1
        start = horizon
    history = state.history
    keep = [h for h in history if h[2] < start]
    old = [h for h in history if h[2] >= start]
    if keep:
        before: Stage | None = keep[-1][1]
    elif old:
        before = old[0][0]
    else:
        before = state.stage
    new = derive(
        rules, state.recent_interactions_ms, state.first_paid_ms, before, start, state.clock_ms
    )
    old_set = {(f, t, at) for f, t, at in old}
    new_set = set(new)
    out = [
        Transition(state.user_id, f, t, at, retracted=True)
        for f, t, at in old
        if (f, t, at) not in new_set
    ]
    out += [Transition(state.user_id, f, t, at) for f, t, at in new if (f, t, at) not in old_set]
    for transition in out:
        if transition.is_reactivation:
            state.reactivations += -1 if transition.retracted else 1
    state.history = keep + [[f, t, at] for f, t, at in new]
    if state.history:
        state.stage, state.stage_since_ms = state.history[-1][1], state.history[-1][2]
    else:
        state.stage = before
    return out


def advance(state: UserState, rules: StageRules, now_ms: int) -> list[Transition]:
    """Derive the stage history on to `now_ms` with no new event (a watermark settling idle
    users, or the time just before a new event).

    Each transition carries the exact time its rule fired (say, 30 days after the last
    interaction), so advancing late gives the same history as advancing often.
    Advancing to `now_ms` settles it: an event stamped at or before it is late and corrects
    the history (so a watermark settles the times strictly before its own).
    """
    if state.clock_ms is not None and now_ms <= state.clock_ms:
        return []  # derived that far already
    out: list[Transition] = []
    points = change_points(
        rules, state.last_interaction_ms, state.recent_interactions_ms, state.first_paid_ms
    )
    after = state.clock_ms if state.clock_ms is not None else -1
    for point in points:
        if point <= after:
            continue
        if point > now_ms:
            break
        move(state, stage_now(state, rules, point), point, out)
    if state.last_interaction_ms is not None:
        state.clock_ms = now_ms
    return out
