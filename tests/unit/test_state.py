"""UserState under sequences of events on the event clock: apply, advance, late events."""

from __future__ import annotations

import orjson
import pytest

from pipeline.domain.facts import Fact
from pipeline.domain.history import Transition, advance
from pipeline.domain.stages import DAY_MS, Stage, StageRules
from pipeline.domain.state import UserState, apply

T0 = 1_700_000_000_000
RULES = StageRules()


def fact(kind: str, ts: int, amount_cents: int = 0) -> Fact:
    return Fact(user_id="u1", type=kind, ts_ms=ts, amount_cents=amount_cents)


def run(state: UserState, *facts: Fact, rules: StageRules = RULES) -> list[Transition]:
    out: list[Transition] = []
    for f in facts:
        out.extend(apply(state, f, rules))
    return out


def moves(transitions: list[Transition]) -> list[tuple[Stage | None, Stage, int]]:
    return [(t.from_stage, t.to_stage, t.at_ms) for t in transitions]


def test_first_interaction_makes_a_potential_user() -> None:
    state = UserState("u1")
    out = apply(state, fact("like", T0), RULES)
    assert moves(out) == [(None, Stage.POTENTIAL, T0)]
    assert not out[0].is_reactivation
    assert state.stage is Stage.POTENTIAL
    assert state.stage_since_ms == T0
    assert state.first_seen_ms == state.last_event_ms == state.last_interaction_ms == T0
    assert state.interactions == 1
    assert state.version == 1


@pytest.mark.parametrize("kind", ["touch_sent", "touch_opened"])
def test_touch_sent_and_opened_are_not_interactions(kind: str) -> None:
    state = UserState("u1")
    assert apply(state, fact(kind, T0), RULES) == []
    assert state.stage is None
    assert state.interactions == 0
    assert state.last_interaction_ms is None
    assert state.recent_interactions_ms == []
    assert state.last_event_ms == T0
    assert state.version == 1


def test_touch_clicked_is_an_interaction() -> None:
    state = UserState("u1")
    assert moves(apply(state, fact("touch_clicked", T0), RULES)) == [(None, Stage.POTENTIAL, T0)]
    assert state.interactions == 1
    assert state.last_interaction_ms == T0


def test_a_touch_sent_does_not_reset_the_idle_clock() -> None:
    state = UserState("u1")
    run(state, fact("like", T0), fact("touch_sent", T0 + 29 * DAY_MS))
    assert moves(advance(state, RULES, T0 + 30 * DAY_MS)) == [
        (Stage.POTENTIAL, Stage.SILENT, T0 + 30 * DAY_MS)
    ]


def test_advance_before_threshold_does_nothing_and_at_threshold_fires() -> None:
    state = UserState("u1")
    run(state, fact("like", T0))
    assert advance(state, RULES, T0 + 30 * DAY_MS - 1) == []
    assert state.stage is Stage.POTENTIAL
    out = advance(state, RULES, T0 + 30 * DAY_MS)
    assert moves(out) == [(Stage.POTENTIAL, Stage.SILENT, T0 + 30 * DAY_MS)]
    assert advance(state, RULES, T0 + 30 * DAY_MS) == []
    assert advance(state, RULES, T0 + 60 * DAY_MS) == []


def test_transitions_carry_the_time_the_rule_fired_not_the_next_event() -> None:
    state = UserState("u1")
    back = T0 + 100 * DAY_MS
    out = run(state, fact("like", T0), fact("comment", back))
    assert moves(out) == [
        (None, Stage.POTENTIAL, T0),
        (Stage.POTENTIAL, Stage.SILENT, T0 + 30 * DAY_MS),
        (Stage.SILENT, Stage.CHURNED, T0 + 90 * DAY_MS),
        (Stage.CHURNED, Stage.POTENTIAL, back),
    ]
    assert out[-1].is_reactivation
    assert state.stage is Stage.POTENTIAL
    assert state.stage_since_ms == back


def test_going_from_silent_to_churned_is_not_a_reactivation() -> None:
    """SPEC 4: a *return* from silent or churned is a reactivation; sinking further is not."""
    state = UserState("u1")
    out = run(state, fact("like", T0), fact("comment", T0 + 100 * DAY_MS))
    silent_to_churned = out[2]
    assert (silent_to_churned.from_stage, silent_to_churned.to_stage) == (
        Stage.SILENT,
        Stage.CHURNED,
    )
    assert [t.is_reactivation for t in out] == [False, False, False, True]
    assert state.reactivations == 1


def test_return_from_silent_counts_a_reactivation_each_time() -> None:
    state = UserState("u1")
    first_back = T0 + 45 * DAY_MS
    second_back = first_back + 40 * DAY_MS
    out = run(state, fact("like", T0), fact("like", first_back), fact("like", second_back))
    assert moves([t for t in out if t.is_reactivation]) == [
        (Stage.SILENT, Stage.POTENTIAL, first_back),
        (Stage.SILENT, Stage.POTENTIAL, second_back),
    ]
    assert state.reactivations == 2


def test_advancing_late_equals_advancing_often() -> None:
    often, late = UserState("u1"), UserState("u1")
    run(often, fact("like", T0))
    run(late, fact("like", T0))
    stepped: list[Transition] = []
    for day in range(0, 120, 7):
        stepped.extend(advance(often, RULES, T0 + day * DAY_MS))
    assert moves(stepped) == moves(advance(late, RULES, T0 + 119 * DAY_MS))
    assert often.to_dict() == late.to_dict()


def test_paid_order_makes_a_new_customer() -> None:
    state = UserState("u1")
    out = run(state, fact("order_paid", T0, 12_345))
    assert moves(out) == [(None, Stage.NEW, T0)]
    assert state.order_count == 1
    assert state.monetary_cents == 12_345
    assert state.first_paid_ms == state.last_paid_ms == T0


def test_order_created_is_an_interaction_but_not_a_purchase() -> None:
    state = UserState("u1")
    run(state, fact("order_created", T0, 500))
    assert state.stage is Stage.POTENTIAL
    assert state.order_count == 0
    assert state.monetary_cents == 0
    assert state.first_paid_ms is None


def test_second_paid_order_keeps_first_paid_and_sums_monetary() -> None:
    state = UserState("u1")
    run(state, fact("order_paid", T0, 1_000), fact("order_paid", T0 + 5 * DAY_MS, 2_500))
    assert state.order_count == 2
    assert state.monetary_cents == 3_500
    assert state.first_paid_ms == T0
    assert state.last_paid_ms == T0 + 5 * DAY_MS
    assert state.stage is Stage.NEW


def test_new_customer_moves_on_when_the_new_window_ends() -> None:
    state = UserState("u1")
    run(state, fact("order_paid", T0, 100), fact("like", T0 + 20 * DAY_MS))
    out = advance(state, RULES, T0 + 60 * DAY_MS)
    assert moves(out) == [
        (Stage.NEW, Stage.ACTIVE, T0 + 30 * DAY_MS),
        (Stage.ACTIVE, Stage.SILENT, T0 + 50 * DAY_MS),
    ]


def test_refund_reduces_monetary_and_counts_refunds() -> None:
    state = UserState("u1")
    paid = Fact("u1", "order_paid", T0, 10_000, order_id="o1")
    run(state, paid, Fact("u1", "order_refunded", T0 + DAY_MS, 2_500, order_id="o1"))
    assert state.monetary_cents == 7_500
    assert state.refund_count == 1
    assert state.order_count == 1
    assert state.interactions == 2
    assert state.stage is Stage.NEW


def test_tenth_interaction_inside_30_days_makes_the_user_active() -> None:
    state = UserState("u1")
    out = run(state, *(fact("like", T0 + i * DAY_MS) for i in range(10)))
    assert moves(out) == [
        (None, Stage.POTENTIAL, T0),
        (Stage.POTENTIAL, Stage.ACTIVE, T0 + 9 * DAY_MS),
    ]


def test_nine_interactions_leave_the_user_potential() -> None:
    state = UserState("u1")
    run(state, *(fact("like", T0 + i * DAY_MS) for i in range(9)))
    assert state.stage is Stage.POTENTIAL


def test_active_ends_when_the_tenth_latest_interaction_leaves_the_window() -> None:
    state = UserState("u1")
    run(state, *(fact("like", T0 + i * DAY_MS) for i in range(10)))
    out = advance(state, RULES, T0 + 200 * DAY_MS)
    assert moves(out) == [
        (Stage.ACTIVE, Stage.POTENTIAL, T0 + 30 * DAY_MS),
        (Stage.POTENTIAL, Stage.SILENT, T0 + 39 * DAY_MS),
        (Stage.SILENT, Stage.CHURNED, T0 + 99 * DAY_MS),
    ]


def test_recent_interactions_stay_bounded_and_sorted() -> None:
    state = UserState("u1")
    times = [T0 + ((i * 7919) % 1000) * 60_000 for i in range(1000)]
    run(state, *(fact("like", t) for t in times))
    assert state.recent_interactions_ms == sorted(times)[-StageRules().kept_interactions :]
    assert state.interactions == 1000


def test_late_interaction_does_not_move_the_last_interaction_back() -> None:
    state = UserState("u1")
    run(state, fact("like", T0 + 10 * DAY_MS), fact("like", T0))
    assert state.last_interaction_ms == T0 + 10 * DAY_MS
    assert state.last_event_ms == T0 + 10 * DAY_MS
    assert state.first_seen_ms == T0
    assert state.recent_interactions_ms == [T0, T0 + 10 * DAY_MS]
    assert state.interactions == 2


def test_late_paid_order_moves_first_paid_back_only() -> None:
    state = UserState("u1")
    run(state, fact("order_paid", T0 + 10 * DAY_MS, 100), fact("order_paid", T0, 200))
    assert state.first_paid_ms == T0
    assert state.last_paid_ms == T0 + 10 * DAY_MS
    assert state.monetary_cents == 300


def corrections(out: list[Transition]) -> list[tuple[str, Stage | None, Stage, int]]:
    return [("-" if t.retracted else "+", t.from_stage, t.to_stage, t.at_ms) for t in out]


P, A, S, C = Stage.POTENTIAL, Stage.ACTIVE, Stage.SILENT, Stage.CHURNED


def test_a_late_tenth_interaction_rewrites_the_history_from_its_time() -> None:
    state = UserState("u1")
    run(state, *(fact("like", T0 + i * DAY_MS) for i in range(1, 10)))
    assert state.stage is P
    out = apply(state, fact("like", T0), RULES)  # late: the 10th interaction, inside the window
    assert corrections(out) == [
        ("-", None, P, T0 + DAY_MS),
        ("+", None, P, T0),
        ("+", P, A, T0 + 9 * DAY_MS),
    ]
    assert (state.stage, state.stage_since_ms) == (A, T0 + 9 * DAY_MS)


def test_a_late_event_older_than_the_window_gives_the_history_its_beginning() -> None:
    state = UserState("u1")
    run(state, *(fact("like", T0 + i * DAY_MS) for i in range(40, 49)))
    out = apply(state, fact("like", T0), RULES)
    assert corrections(out) == [
        ("-", None, P, T0 + 40 * DAY_MS),
        ("+", None, P, T0),
        ("+", P, S, T0 + 30 * DAY_MS),
        ("+", S, P, T0 + 40 * DAY_MS),
    ]
    assert (state.stage, state.reactivations) == (P, 1)


def test_a_late_interaction_retracts_a_silent_stage_it_disproves() -> None:
    state = UserState("u1")
    run(state, fact("like", T0), fact("touch_sent", T0 + 40 * DAY_MS))
    assert state.stage is S
    out = apply(state, fact("like", T0 + 20 * DAY_MS), RULES)
    assert corrections(out) == [("-", P, S, T0 + 30 * DAY_MS)]
    assert (state.stage, state.stage_since_ms) == (P, T0)
    assert state.last_interaction_ms == T0 + 20 * DAY_MS


def test_an_event_behind_the_watermark_corrects_the_idle_transitions_after_it() -> None:
    state = UserState("u1")
    run(state, fact("like", T0))
    assert moves(advance(state, RULES, T0 + 100 * DAY_MS)) == [
        (P, S, T0 + 30 * DAY_MS),
        (S, C, T0 + 90 * DAY_MS),
    ]
    out = apply(state, fact("like", T0 + 50 * DAY_MS), RULES)
    assert corrections(out) == [
        ("-", S, C, T0 + 90 * DAY_MS),
        ("+", S, P, T0 + 50 * DAY_MS),
        ("+", P, S, T0 + 80 * DAY_MS),
    ]
    assert [tuple(h) for h in state.history] == [
        (None, P, T0),
        (P, S, T0 + 30 * DAY_MS),
        (S, P, T0 + 50 * DAY_MS),
        (P, S, T0 + 80 * DAY_MS),
    ]
    assert state.reactivations == 1


def test_events_at_the_same_time_make_one_transition() -> None:
    state = UserState("u1")
    run(state, fact("like", T0))
    out = apply(state, fact("order_paid", T0), RULES)  # the same moment: a buyer from the start
    assert corrections(out) == [("-", None, P, T0), ("+", None, Stage.NEW, T0)]
    assert [tuple(h) for h in state.history] == [(None, Stage.NEW, T0)]


def test_an_interaction_at_the_moment_the_silent_rule_fires_keeps_the_user() -> None:
    state = UserState("u1")
    out = run(state, fact("like", T0), fact("like", T0 + 30 * DAY_MS))
    assert moves(out) == [(None, P, T0)]


def test_history_beyond_the_kept_interactions_is_a_counted_gap() -> None:
    rules = StageRules(active_min_interactions=2, kept_interactions=3)
    state = UserState("u1")
    for i in range(1, 6):
        apply(state, fact("like", T0 + i * 40 * DAY_MS), rules)
    before = [tuple(h) for h in state.history]
    apply(state, fact("like", T0), rules)  # older than every kept interaction
    assert state.history_gaps == 1
    assert state.interactions == 6  # counts stay exact
    assert [tuple(h) for h in state.history] == before


def test_to_dict_from_dict_round_trip_through_json() -> None:
    state = UserState("u1")
    run(
        state,
        fact("like", T0),
        fact("order_paid", T0 + DAY_MS, 999),
        fact("like", T0 + 95 * DAY_MS),
    )
    data = state.to_dict()
    assert data["stage"] == "active"  # a buyer past the new window, back after churning
    assert data["reactivations"] >= 1
    restored = UserState.from_dict(orjson.loads(orjson.dumps(data)))
    assert restored == state
    assert restored.stage is state.stage


def test_round_trip_of_a_fresh_state_keeps_stage_none() -> None:
    state = UserState("u2")
    assert state.to_dict()["stage"] is None
    assert UserState.from_dict(state.to_dict()) == state


def test_from_dict_copies_the_recent_list() -> None:
    data = UserState("u1", recent_interactions_ms=[1, 2]).to_dict()
    restored = UserState.from_dict(data)
    restored.recent_interactions_ms.append(3)
    assert data["recent_interactions_ms"] == [1, 2]


def test_transition_from_nothing_is_not_a_reactivation() -> None:
    assert not Transition("u1", None, Stage.POTENTIAL, T0).is_reactivation
    assert Transition("u1", Stage.SILENT, Stage.NEW, T0).is_reactivation
    assert not Transition("u1", Stage.ACTIVE, Stage.SILENT, T0).is_reactivation
