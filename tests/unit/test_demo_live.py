"""The demo's present (`pipeline.demo_live`): its rate, its storms and its planted people."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from pipeline.demo_live import FIRST_STORM_AFTER, RATE_PER_SECOND, STORM_COMMENTS, Studio
from pipeline.demo_model import NEGATIVE, World

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)


def studio() -> Studio:
    return Studio(World(200, NOW - timedelta(days=120), 120, seed=7), NOW, seed=7)


def test_planted_people_turn_silent_churned_and_cross_three_hours_after_the_start() -> None:
    s = studio()
    planted = s.planted(NOW)
    assert all(event.ts < NOW for event in planted)
    last_seen = {e.user_id: e.ts for e in planted if e.user_id.startswith("p-s")}
    due = sorted(ts + timedelta(days=30) for ts in last_seen.values())
    assert NOW < due[0] < due[-1] < NOW + timedelta(minutes=10)
    watched = sum(e.seconds or 0 for e in planted if e.user_id == "p-marathon")
    assert watched == 10_740  # 2 h 59 min
    first = s.second(NOW)
    marathon = [e for e in first if e.user_id == "p-marathon"]
    assert (marathon[0].type, marathon[0].seconds) == ("watch", 60)  # crosses 10,800 s


def test_about_two_events_a_second_and_a_storm_of_negative_comments() -> None:
    s = studio()
    events = [e for n in range(600) for e in s.second(NOW + timedelta(seconds=n))]
    storm = [e for e in events if e.type == "comment" and e.text in NEGATIVE
             and NOW + FIRST_STORM_AFTER <= e.ts < NOW + FIRST_STORM_AFTER
             + timedelta(minutes=1)]  # fmt: skip
    assert len(storm) >= STORM_COMMENTS
    assert len({e.room_id for e in storm}) == 1
    steady = len(events) - STORM_COMMENTS
    assert 0.8 * RATE_PER_SECOND * 600 < steady < 1.2 * RATE_PER_SECOND * 600
    kinds = Counter(e.type for e in events)
    assert 0 < kinds["order_paid"] < 40  # a busy broadcast's rate, not a flood
    assert kinds["room_enter"] > 0  # viewers come in
    buyers = [e.user_id for e in events if e.type == "order_paid"]
    assert len(buyers) == len(set(buyers))  # nobody buys twice within half an hour
    assert any(user.startswith("v") for user in buyers)  # new visitors buy: the `new` stage


def test_orders_that_cross_a_rule_come_on_a_schedule_from_the_first_minute() -> None:
    s = studio()
    for day in range(120):  # the history, which gives the users their orders
        s.world.day(s.world.start + timedelta(days=day))
    s.planted(NOW)
    orders = [e for n in range(120) for e in s.second(NOW + timedelta(seconds=n))
              if e.type == "order_paid"]  # fmt: skip
    by_user = {e.user_id: e for e in orders}
    assert any(user.startswith("v") for user in by_user)  # a first order: the `new` stage
    once = {u.user_id for u in s.world.users if u.orders == 2}
    assert once & set(by_user)  # a one-time buyer's second order: repeat_buyer
    assert any(e.amount >= 3000 for e in orders)  # a big basket


def test_lapsed_users_come_back_often_at_first_then_now_and_then() -> None:
    s = studio()
    lapsed = set(s.lapsed)
    back = [e.user_id for n in range(1800) for e in s.second(NOW + timedelta(seconds=n))
            if e.type == "room_enter" and e.user_id in lapsed]  # fmt: skip
    first_quarter = [u for u in back[:45]]
    assert len(set(first_quarter)) == len(first_quarter)  # each once
    assert 44 <= len(back) <= 50  # 45 in the first 15 minutes, then one every 5 minutes
