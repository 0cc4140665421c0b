"""Online RFM (SPEC section 4): exact quantiles against brute force, scores, segments, classes."""

from __future__ import annotations

import itertools
import json
import math
import random

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


def brute_cuts(values: list[int], k: int) -> tuple[int, ...]:
    """Nearest-rank quantiles by sorting: cut j is the sorted value at rank ceil(j*n/k) - 1."""
    xs = sorted(values)
    n = len(xs)
    return tuple(xs[math.ceil(j * n / k) - 1] for j in range(1, k))


def brute_score(values: list[int], v: int, k: int) -> int:
    below = sum(1 for x in values if x < v)
    return min(k, 1 + (k * below) // len(values))


# Few distinct values (many ties) or a wide range.
values_st = st.one_of(
    st.lists(st.integers(0, 4), min_size=1, max_size=80),
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=80),
)


# -- ValueDistribution ----------------------------------------------------------------------


@settings(max_examples=300)
@given(
    values=values_st,
    k=st.integers(1, 7),
    ops=st.lists(st.tuples(st.booleans(), st.integers(-5, 5)), max_size=60),
    seed=st.integers(0, 2**32),
)
def test_cuts_and_scores_match_brute_force_through_adds_and_removes(
    values: list[int], k: int, ops: list[tuple[bool, int]], seed: int
) -> None:
    rng = random.Random(seed)
    dist = ValueDistribution()
    current: list[int] = []
    for v in values:
        dist.add(v)
        current.append(v)
    dist.quantile_cuts(k)  # track k from here on: cuts are then maintained incrementally
    for is_add, v in ops:
        if is_add or not current:
            dist.add(v)
            current.append(v)
        else:
            x = current.pop(rng.randrange(len(current)))
            dist.remove(x)
        assert len(dist) == len(current)
        if current:
            assert dist.quantile_cuts(k) == brute_cuts(current, k)
            assert dist.quantile_cuts(5) == brute_cuts(current, 5)
            probe = rng.choice([*current, v, v + 1, v - 1])
            assert dist.score(probe, k) == brute_score(current, probe, k)
    # Removing everything empties it, and it works again afterwards.
    for x in current:
        dist.remove(x)
    assert len(dist) == 0
    with pytest.raises(ValueError, match="empty"):
        dist.quantile_cuts(k)
    dist.add(7)
    assert dist.quantile_cuts(k) == (7,) * (k - 1)


@given(values=values_st, seed=st.integers(0, 2**32))
def test_random_removals_keep_cuts_exact(values: list[int], seed: int) -> None:
    rng = random.Random(seed)
    dist = ValueDistribution()
    for v in values:
        dist.add(v)
    current = list(values)
    rng.shuffle(current)
    while current:
        assert dist.quantile_cuts() == brute_cuts(current, 5)
        dist.remove(current.pop())


@given(values=values_st, k=st.integers(1, 7))
def test_scores_are_monotone_in_the_value_and_in_range(values: list[int], k: int) -> None:
    dist = ValueDistribution()
    for v in values:
        dist.add(v)
    probes = range(min(values) - 2, max(values) + 3)
    scores = [dist.score(v, k) for v in probes]
    assert scores == sorted(scores)
    assert all(1 <= s <= k for s in scores)
    assert dist.score(min(values), k) == 1


def test_quintiles_of_one_to_ten() -> None:
    dist = ValueDistribution()
    for v in range(1, 11):
        dist.add(v)
    assert dist.quantile_cuts() == (2, 4, 6, 8)
    assert [dist.score(v) for v in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_ties_share_a_score() -> None:
    dist = ValueDistribution()
    for v in [1] * 70 + [2] * 15 + [3] * 10 + [9] * 5:
        dist.add(v)
    assert dist.score(1) == 1
    assert dist.score(2) == 4  # 70% of the population is strictly below
    assert dist.score(3) == dist.score(9) == 5


def test_remove_of_an_absent_value_raises() -> None:
    dist = ValueDistribution()
    dist.add(3)
    with pytest.raises(ValueError, match="cannot remove 4"):
        dist.remove(4)
    dist.remove(3)
    with pytest.raises(ValueError, match="cannot remove 3"):
        dist.remove(3)
    assert len(dist) == 0


def test_bad_k_and_bad_counts_raise() -> None:
    dist = ValueDistribution()
    dist.add(1)
    with pytest.raises(ValueError, match="k must be"):
        dist.quantile_cuts(0)
    with pytest.raises(ValueError, match="count"):
        ValueDistribution.from_items([(1, 0)])


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
    pop.score(users[0], 400)  # track quintiles before the checkpoint
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
    assert pop.frequency.quantile_cuts() == brute_cuts([u.frequency for u in users], 5)
    assert pop.monetary.quantile_cuts() == brute_cuts([u.monetary_cents for u in users], 5)


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
