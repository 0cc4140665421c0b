"""Online RFM (SPEC section 4): exact quantiles against brute force, scores, segments, classes."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.rfm import (
    RfmPopulation,
    RfmScore,
    RfmValues,
    ValueDistribution,
    rfm_class,
    segment,
)
from pipeline.domain.rfm_scale import score_of, thresholds


def brute_score(values: list[int], v: int, k: int = 5) -> int:
    """The scale's rule by its definition: v's midrank share, stretched so the lowest group
    is at 0 and the highest at 1, cut into k equal parts (one group: all score k)."""
    n = len(values)

    def mid(x: int) -> float:
        return (sum(1 for y in values if y < x) + sum(1 for y in values if y <= x)) / (2 * n)

    low, high = mid(min(values)), mid(max(values))
    if low == high:
        return k
    return 1 + min(k - 1, max(0, math.floor(k * (mid(v) - low) / (high - low) + 1e-12)))


def scale_of(values: list[int], k: int = 5) -> tuple[int, ...]:
    dist = ValueDistribution()
    for v in values:
        dist.add(v)
    return thresholds(dist.items(), k)


# Few distinct values (many ties) or a wide range.
values_st = st.one_of(
    st.lists(st.integers(0, 4), min_size=1, max_size=80),
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=80),
)


# -- the scale ------------------------------------------------------------------------------


@settings(max_examples=300)
@given(values=values_st, k=st.integers(2, 7))
def test_scores_match_the_rule_by_brute_force(values: list[int], k: int) -> None:
    cuts = scale_of(values, k)
    for v in set(values):
        assert score_of(v, cuts) == brute_score(values, v, k), v


@given(values=values_st, k=st.integers(2, 7))
def test_scores_are_monotone_shared_by_ties_and_reach_both_ends(values: list[int], k: int) -> None:
    cuts = scale_of(values, k)
    probes = range(min(values) - 2, max(values) + 3)
    scores = [score_of(v, cuts) for v in probes]
    assert scores == sorted(scores)
    assert all(1 <= s <= k for s in scores)
    assert score_of(max(values), cuts) == k  # the top group: the most recent, the top spenders
    if len(set(values)) > 1:
        assert score_of(min(values), cuts) == 1


def test_quintiles_of_one_to_ten() -> None:
    assert [score_of(v, scale_of(list(range(1, 11)))) for v in range(1, 11)] == [
        1, 1, 2, 2, 3, 3, 4, 4, 5, 5,
    ]  # fmt: skip


def test_ties_share_a_score_and_never_straddle_a_boundary() -> None:
    # 70% one-time buyers: one group, at the bottom (not spread over scores 1 to 4).
    values = [1] * 70 + [2] * 15 + [3] * 10 + [9] * 5
    cuts = scale_of(values)
    assert [score_of(v, cuts) for v in (1, 2, 3, 9)] == [1, 4, 5, 5]


def test_a_population_of_one_group_scores_at_the_top() -> None:
    assert score_of(100, scale_of([100] * 5)) == 5


def test_the_distribution_counts_values() -> None:
    dist = ValueDistribution()
    for v in (3, 1, 3, 2):
        dist.add(v)
    assert dist.items() == [(1, 1), (2, 1), (3, 2)]
    dist.remove(3)
    dist.remove(1)
    assert dist.items() == [(2, 1), (3, 1)]
    assert len(dist) == 2
    with pytest.raises(ValueError, match="not in the distribution"):
        dist.remove(1)
    with pytest.raises(ValueError, match="count"):
        ValueDistribution.from_items([(1, 0)])
    with pytest.raises(ValueError, match="empty"):
        thresholds([])


# -- RfmPopulation --------------------------------------------------------------------------


def test_update_moves_a_user() -> None:
    pop = RfmPopulation()
    a = RfmValues(last_paid_day=100, frequency=1, monetary_cents=5_000)
    b = RfmValues(last_paid_day=120, frequency=2, monetary_cents=9_000)
    pop.update(None, a)
    pop.update(None, RfmValues(90, 3, 1_000))
    assert len(pop) == 2
    pop.update(a, b)
    assert len(pop) == 2
    assert 100 not in pop.recency
    assert 120 in pop.recency
    assert 5_000 not in pop.monetary
    assert 9_000 in pop.monetary
    pop.update(b, b)  # no change
    assert len(pop) == 2
    pop.update(b, None)
    assert len(pop) == 1
    assert pop.recency.items() == [(90, 1)]


def test_update_of_an_unknown_old_value_raises_and_changes_nothing() -> None:
    pop = RfmPopulation()
    pop.update(None, RfmValues(10, 1, 100))
    before = pop.to_dict()
    with pytest.raises(ValueError, match="not in the population"):
        pop.update(RfmValues(10, 1, 999), RfmValues(11, 2, 200))
    assert pop.to_dict() == before


def test_rfm_values_need_a_paid_order() -> None:
    with pytest.raises(ValueError, match="paid order"):
        RfmValues(10, 0, 0)


def test_score_fields() -> None:
    pop = RfmPopulation()
    for i in range(1, 11):
        pop.update(None, RfmValues(last_paid_day=i, frequency=i, monetary_cents=i * 1000))
    best = pop.score(RfmValues(10, 10, 10_000), as_of_day=12)
    assert best == RfmScore(
        recency_days=2.0,
        frequency=10,
        monetary=100.0,
        r=5,
        f=5,
        m=5,
        segment="Champions",
        rfm_class="A",
    )
    worst = pop.score(RfmValues(1, 1, 1000), as_of_day=12)
    assert (worst.r, worst.f, worst.m, worst.segment, worst.rfm_class) == (
        1,
        1,
        1,
        "Hibernating",
        "C",
    )
    assert worst.recency_days == 11.0


def test_the_issue_cases_recent_buyers_and_top_spenders_score_five() -> None:
    today = 1_000
    pop = RfmPopulation()
    five = [RfmValues(today - 2, 1, 10_000) for _ in range(5)]  # five buyers at 100.00
    for u in five:
        pop.update(None, u)
    scores = {pop.score(u, today) for u in five}
    assert [(s.r, s.f, s.m) for s in scores] == [(5, 5, 5)]  # not 1, 1, 1 "Hibernating"
    # Ten buyers at 500.00 and ten at 10.00 yesterday.
    big = [RfmValues(today - 1, 1, 50_000) for _ in range(10)]
    small = [RfmValues(today - 1, 1, 1_000) for _ in range(10)]
    for u in big + small:
        pop.update(None, u)
    # Fewer changes than a new version needs: the scores stay those of the version taken.
    assert pop.score(five[0], today).r == 5
    pop.scale(fresh=True)  # the population as it is now
    latest = pop.score(big[0], today)
    assert (latest.r, latest.m) == (5, 5)  # the latest buyers and the top spenders
    assert pop.score(small[0], today).m == 1
    assert pop.score(five[0], today).r == 1
    # Equal values get equal scores against the same population version, whoever asks.
    assert pop.score(five[0], today) == pop.score(five[1], today)


def test_empty_population_cannot_score() -> None:
    with pytest.raises(ValueError, match="empty"):
        RfmPopulation().score(RfmValues(1, 1, 1), as_of_day=1)


def test_to_dict_from_dict_round_trip_gives_identical_scores() -> None:
    rng = random.Random(7)
    pop = RfmPopulation()
    users = [
        RfmValues(rng.randrange(0, 400), rng.randrange(1, 8), rng.randrange(0, 50_000))
        for _ in range(2_000)
    ]
    for u in users:
        pop.update(None, u)
    pop.score(users[0], 400)  # a scale of the whole population before the checkpoint
    restored = RfmPopulation.from_dict(json.loads(json.dumps(pop.to_dict())))
    assert len(restored) == len(pop) == 2_000
    assert restored.to_dict() == pop.to_dict()
    for u in users[:300]:
        assert restored.score(u, 400) == pop.score(u, 400)
    # Both keep moving identically after the restore.
    for old, new in zip(users[:100], users[100:200], strict=True):
        pop.update(old, new)
        restored.update(old, new)
        assert restored.score(new, 400) == pop.score(new, 400)


def test_from_dict_rejects_bad_checkpoints() -> None:
    data = RfmPopulation().to_dict()
    with pytest.raises(ValueError, match="version"):
        RfmPopulation.from_dict({**data, "version": 2})
    with pytest.raises(ValueError, match="different sizes"):
        RfmPopulation.from_dict({**data, "recency": [[1, 1]]})


def test_200k_users_and_10k_updates() -> None:
    rng = random.Random(1)
    pop = RfmPopulation()
    users = [
        RfmValues(
            rng.randrange(0, 730),
            1 + int(rng.expovariate(0.5)),
            int(rng.lognormvariate(9, 1.2)),
        )
        for _ in range(200_000)
    ]
    for u in users:
        pop.update(None, u)
    assert len(pop) == 200_000
    pop.score(users[0], as_of_day=730)
    for _ in range(10_000):
        i = rng.randrange(len(users))
        old = users[i]
        new = RfmValues(730, old.frequency + 1, old.monetary_cents + rng.randrange(100, 20_000))
        pop.update(old, new)
        users[i] = new
        s = pop.score(new, as_of_day=730)
        assert s.r == 5
    assert len(pop) == 200_000
    # The incremental population is the population rebuilt from scratch.
    assert pop.frequency.items() == sorted(Counter(u.frequency for u in users).items())
    assert pop.monetary.items() == sorted(Counter(u.monetary_cents for u in users).items())
    assert pop.scale(fresh=True).frequency == thresholds(pop.frequency.items())


# -- segment and class ----------------------------------------------------------------------

SEGMENTS = {
    "Champions",
    "Loyal",
    "Potential loyalist",
    "New customer",
    "Promising",
    "Need attention",
    "At risk",
    "Hibernating",
}


def test_segment_map_is_total() -> None:
    seen = {segment(r, f, m) for r, f, m in itertools.product(range(1, 6), repeat=3)}
    assert seen == SEGMENTS


@pytest.mark.parametrize(
    ("r", "f", "m", "expected"),
    [
        (5, 5, 5, "Champions"),
        (4, 4, 4, "Champions"),
        (5, 5, 3, "Loyal"),
        (3, 4, 5, "Loyal"),
        (3, 5, 1, "Loyal"),
        (5, 3, 1, "Potential loyalist"),
        (4, 2, 5, "Potential loyalist"),
        (5, 1, 5, "New customer"),
        (4, 1, 1, "New customer"),
        (3, 2, 5, "Promising"),
        (3, 1, 1, "Promising"),
        (3, 3, 1, "Need attention"),
        (2, 3, 5, "At risk"),
        (1, 5, 5, "At risk"),
        (2, 2, 5, "Hibernating"),
        (1, 1, 1, "Hibernating"),
    ],
)
def test_segment_examples(r: int, f: int, m: int, expected: str) -> None:
    assert segment(r, f, m) == expected


def test_segment_rejects_out_of_range_scores() -> None:
    with pytest.raises(ValueError, match=r"1\.\.5"):
        segment(0, 3, 3)
    with pytest.raises(ValueError, match=r"1\.\.5"):
        segment(3, 6, 3)


def test_class_thresholds() -> None:
    assert rfm_class(4, 4, 4) == "A"
    assert rfm_class(5, 5, 2) == "A"
    assert rfm_class(3, 5, 5) == "B"  # total 13 but R <= 3: no priority
    assert rfm_class(4, 4, 3) == "B"
    assert rfm_class(4, 2, 2) == "B"
    assert rfm_class(1, 1, 5) == "C"
    assert rfm_class(3, 2, 2) == "C"
    assert rfm_class(3, 5, 5, a_min_r=3) == "A"
    assert rfm_class(2, 2, 2, b_total=6) == "B"
    assert rfm_class(5, 5, 5, a_total=16) == "B"


def test_class_is_consistent_over_all_scores() -> None:
    for r, f, m in itertools.product(range(1, 6), repeat=3):
        total = r + f + m
        c = rfm_class(r, f, m)
        assert (c == "A") == (total >= 12 and r >= 4)
        assert (c == "C") == (total < 8)


def test_population_passes_class_thresholds() -> None:
    pop = RfmPopulation(a_total=16)
    for i in range(1, 11):
        pop.update(None, RfmValues(i, i, i))
    assert pop.score(RfmValues(10, 10, 10), 10).rfm_class == "B"
