"""Stage rules (SPEC section 4) at and around every threshold, and StageRules validation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain.stages import (
    DAY_MS,
    REACTIVATED_FROM,
    Stage,
    StageRules,
    change_points,
    stage_at,
)

T0 = 1_700_000_000_000
RULES = StageRules()


def daily(n: int, end_ms: int) -> list[int]:
    """`n` interactions one day apart, the last one at `end_ms`, oldest first."""
    return [end_ms - (n - 1 - i) * DAY_MS for i in range(n)]


# -- StageRules ---------------------------------------------------------------------------


def test_defaults_are_the_spec_values_in_ms() -> None:
    assert RULES.active_window_ms == 30 * DAY_MS
    assert RULES.active_min_interactions == 10
    assert RULES.new_window_ms == 30 * DAY_MS
    assert RULES.silent_ms == 30 * DAY_MS
    assert RULES.churned_ms == 90 * DAY_MS


def test_fractional_days_convert_to_ms() -> None:
    rules = StageRules(silent_after_days=0.5, churned_after_days=1.25)
    assert rules.silent_ms == DAY_MS // 2
    assert rules.churned_ms == DAY_MS + DAY_MS // 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"active_min_interactions": 0},
        {"active_min_interactions": -3},
        {"silent_after_days": 0.0},
        {"silent_after_days": -1.0},
        {"silent_after_days": 90.0, "churned_after_days": 90.0},
        {"silent_after_days": 100.0, "churned_after_days": 90.0},
        {"active_window_days": 0.0},
        {"active_window_days": -5.0},
        {"new_window_days": 0.0},
        {"silent_after_days": math.nan},
    ],
)
def test_invalid_rules_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"at least 1|silent_after_days < churned|positive|finite"):
        StageRules(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"active_window_days": math.nan},
        {"new_window_days": math.nan},
        {"churned_after_days": math.inf},
    ],
)
def test_non_finite_thresholds_are_refused_at_construction(kwargs: dict[str, float]) -> None:
    # A threshold that cannot become milliseconds must fail when the rules are built (at
    # startup), not on the first event that reads the `*_ms` property.
    with pytest.raises(ValueError):  # noqa: PT011 - any message; the point is when it fails
        StageRules(**kwargs)  # type: ignore[arg-type]


def test_rules_are_frozen() -> None:
    with pytest.raises(AttributeError):
        RULES.silent_after_days = 1.0  # type: ignore[misc]


def test_reactivation_sources_are_silent_and_churned() -> None:
    assert frozenset({Stage.SILENT, Stage.CHURNED}) == REACTIVATED_FROM


# -- stage_at -----------------------------------------------------------------------------


def test_none_before_any_interaction() -> None:
    assert stage_at(RULES, T0, None, [], None) is None
    assert stage_at(RULES, T0, None, [], T0 - DAY_MS) is None


def test_potential_when_interacted_but_never_paid() -> None:
    assert stage_at(RULES, T0, T0, [T0], None) is Stage.POTENTIAL


def test_silent_at_exactly_30_days_idle_and_not_one_ms_before() -> None:
    last = T0
    assert stage_at(RULES, last + 30 * DAY_MS - 1, last, [last], None) is Stage.POTENTIAL
    assert stage_at(RULES, last + 30 * DAY_MS, last, [last], None) is Stage.SILENT


def test_churned_at_exactly_90_days_idle_and_silent_one_ms_before() -> None:
    last = T0
    assert stage_at(RULES, last + 90 * DAY_MS - 1, last, [last], None) is Stage.SILENT
    assert stage_at(RULES, last + 90 * DAY_MS, last, [last], None) is Stage.CHURNED
    assert stage_at(RULES, last + 900 * DAY_MS, last, [last], None) is Stage.CHURNED


def test_idle_rules_apply_to_buyers_too() -> None:
    assert stage_at(RULES, T0 + 30 * DAY_MS, T0, [T0], T0) is Stage.SILENT
    assert stage_at(RULES, T0 + 90 * DAY_MS, T0, [T0], T0) is Stage.CHURNED


def test_ten_interactions_inside_30_days_is_active_nine_is_not() -> None:
    at = T0
    assert stage_at(RULES, at, at, daily(10, at), None) is Stage.ACTIVE
    assert stage_at(RULES, at, at, daily(9, at), None) is Stage.POTENTIAL


def test_active_window_edge_is_exclusive() -> None:
    # The 10th most recent interaction must be strictly inside the trailing 30 days.
    at = T0 + 30 * DAY_MS
    recent = [T0, *daily(9, at)]
    assert stage_at(RULES, at, at, recent, None) is Stage.POTENTIAL
    recent_inside = [T0 + 1, *daily(9, at)]
    assert stage_at(RULES, at, at, recent_inside, None) is Stage.ACTIVE


def test_only_the_last_n_interactions_count() -> None:
    at = T0 + 100 * DAY_MS
    old = [T0 + i for i in range(50)]
    assert stage_at(RULES, at, at, [*old, *daily(9, at)], None) is Stage.POTENTIAL
    assert stage_at(RULES, at, at, [*old, *daily(10, at)], None) is Stage.ACTIVE


def test_new_when_first_paid_order_is_within_the_new_window() -> None:
    paid = T0
    assert stage_at(RULES, paid, paid, [paid], paid) is Stage.NEW
    at = paid + 30 * DAY_MS - 1
    assert stage_at(RULES, at, at, [at], paid) is Stage.NEW


def test_buyer_past_the_new_window_below_active_threshold_is_active() -> None:
    paid = T0
    at = paid + 30 * DAY_MS
    assert stage_at(RULES, at, at, [paid, at], paid) is Stage.ACTIVE


def test_active_rule_takes_precedence_over_new() -> None:
    at = T0
    assert stage_at(RULES, at, at, daily(10, at), at - DAY_MS) is Stage.ACTIVE


def test_custom_thresholds_are_used() -> None:
    rules = StageRules(
        active_window_days=7,
        active_min_interactions=3,
        new_window_days=14,
        silent_after_days=10,
        churned_after_days=20,
    )
    at = T0
    assert stage_at(rules, at, at, daily(3, at), None) is Stage.ACTIVE
    assert stage_at(rules, at, at, daily(2, at), None) is Stage.POTENTIAL
    assert stage_at(rules, at + 10 * DAY_MS, at, [at], None) is Stage.SILENT
    assert stage_at(rules, at + 20 * DAY_MS, at, [at], None) is Stage.CHURNED
    assert stage_at(rules, at + 13 * DAY_MS, at + 13 * DAY_MS, [at], at) is Stage.NEW
    assert stage_at(rules, at + 14 * DAY_MS, at + 14 * DAY_MS, [at], at) is Stage.ACTIVE


# -- change_points ------------------------------------------------------------------------


def test_no_change_points_before_any_interaction() -> None:
    assert change_points(RULES, None, [], T0) == []


def test_change_points_of_a_plain_user_are_silent_and_churned() -> None:
    assert change_points(RULES, T0, [T0], None) == [T0 + 30 * DAY_MS, T0 + 90 * DAY_MS]


def test_change_points_include_new_and_active_expiry_sorted() -> None:
    recent = daily(10, T0)
    points = change_points(RULES, T0, recent, T0 - 5 * DAY_MS)
    assert points == sorted(points)
    assert set(points) == {
        T0 + 30 * DAY_MS,
        T0 + 90 * DAY_MS,
        recent[0] + 30 * DAY_MS,
        T0 - 5 * DAY_MS + 30 * DAY_MS,
    }


def test_active_expiry_only_with_enough_interactions() -> None:
    points = change_points(RULES, T0, daily(9, T0), None)
    assert len(points) == 2


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, list[int], int | None]:
    times = draw(st.lists(st.integers(0, 200 * DAY_MS), min_size=1, max_size=15))
    times.sort()
    paid = draw(st.none() | st.sampled_from(times))
    return times[-1], times, paid


@given(histories(), st.integers(0, 400 * DAY_MS))
def test_stage_is_constant_between_change_points(
    history: tuple[int, list[int], int | None], offset: int
) -> None:
    """Between two change points (after the last interaction) the stage cannot change."""
    last, recent, paid = history
    at = last + offset
    points = [p for p in change_points(RULES, last, recent, paid) if p <= at]
    start = points[-1] if points else last
    assert stage_at(RULES, at, last, recent, paid) == stage_at(RULES, start, last, recent, paid)
