"""Partition summaries of the population models: the money buckets, the merge of partitions
against the summary of everyone, the record round trip, the leader's fit, churn labels that
a correction takes back, and adoption of a publication."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.history import Transition
from pipeline.domain.population import (
    EXACT_CENTS,
    MONEY_ACCURACY,
    MONEY_BOUNDS,
    Summary,
    merge,
    money_bucket,
    summarise,
    user_hash,
)
from pipeline.domain.profile import Models
from pipeline.domain.rfm_scale import score_of, thresholds
from pipeline.domain.stages import DAY_MS, Stage
from pipeline.domain.state import UserState
from pipeline.enrich import Enricher
from pipeline.leader import adopt, fit_population
from pipeline.settings import Settings

SETTINGS = Settings(clickhouse_url="memory://", rfm_min_buyers=1)


@given(st.integers(-10, 10**13))
def test_a_money_bucket_is_the_value_up_to_ten_yuan_and_within_one_percent_above(
    cents: int,
) -> None:
    bucket = money_bucket(cents)
    if cents <= EXACT_CENTS:
        assert bucket == cents
    else:
        assert bucket <= cents
        assert (cents - bucket) / cents <= 2 * MONEY_ACCURACY / (1 - MONEY_ACCURACY)
        assert money_bucket(bucket) == bucket  # the bound is in its own bucket
    # Scoring against bucket bounds puts a value where its bucket is.
    cuts = (money_bucket(cents),)
    assert score_of(cents, cuts) == 2


def test_the_money_bounds_ascend() -> None:
    assert list(MONEY_BOUNDS) == sorted(set(MONEY_BOUNDS))
    assert bisect_right(MONEY_BOUNDS, 10**14) < len(MONEY_BOUNDS)


user_rows = st.lists(
    st.tuples(
        st.integers(0, 10**6).map(lambda n: f"u{n}"),
        st.integers(19_000, 20_500),  # last paid day
        st.integers(1, 40),  # paid orders
        st.integers(0, 10**8),  # net cents
        st.lists(st.tuples(st.integers(0, 10**12), st.booleans()), max_size=2),  # labels
    ),
    max_size=60,
    unique_by=lambda r: r[0],
)


def _summary(rows: list, sample: int, labels: int) -> Summary:  # type: ignore[type-arg]
    rfm = [(day, orders, cents) for _, day, orders, cents, _ in rows]
    buyers = [(u, (day * DAY_MS, day * DAY_MS, orders, 0, cents, (), None))
              for u, day, orders, cents, _ in rows]  # fmt: skip
    label_rows = [(at, user_hash(u), {"x": 1.0}, int(y)) for u, *_, ls in rows for at, y in ls]
    clock = max((day * DAY_MS for _, day, *_ in rows), default=0)
    return summarise(rfm, buyers, label_rows, clock, len(rows), sample, labels)


@settings(max_examples=150, deadline=None)
@given(user_rows, st.integers(1, 6), st.integers(1, 30), st.integers(1, 40), st.randoms())
def test_merged_partitions_are_the_summary_of_everyone(
    rows: list,
    parts: int,
    sample: int,
    labels: int,
    rnd: object,  # type: ignore[type-arg]
) -> None:
    split: list[list] = [[] for _ in range(parts)]  # type: ignore[type-arg]
    for row in rows:
        split[rnd.randrange(parts)].append(row)  # type: ignore[attr-defined]
    summaries = [_summary(part, sample, labels) for part in split]
    # Through the topic's record format, as the leader reads them.
    read = [Summary.from_dict(orjson.loads(orjson.dumps(s.to_dict()))) for s in summaries]
    merged = merge(read, sample, labels)
    whole = _summary(rows, sample, labels)
    assert merged.to_dict() == whole.to_dict()
    assert merged.buyers == len(rows)
    assert len(merged.sample) == min(sample, len(rows))


def test_the_leader_fits_one_scale_of_everyone() -> None:
    rows = [(f"u{i}", 20_000 + i % 7, 1 + i % 4, 1_000 + 100 * i, []) for i in range(40)]
    halves = [_summary(rows[:17], 100, 100), _summary(rows[17:], 100, 100)]
    merged = merge(halves, 100, 100)
    document, churn = fit_population(merged, SETTINGS, Models(), "r1")
    scale = document["rfm"]
    assert scale["buyers"] == 40
    assert scale["version"] == 1
    recency = Counter(day for _, day, *_ in rows)
    assert scale["recency_day"] == list(thresholds(sorted(recency.items())))
    assert document["population"] == {"users": 40, "buyers_sampled": 40, "labels": 0}
    assert document["request_id"] == "r1"
    assert document["versions"]["rfm"] == "rfm-1"
    # Adopted by a worker: its documents are scored on the published scale.
    models = Models()
    adopt(models, orjson.loads(orjson.dumps(document)), churn)
    assert models.published
    assert models.scale is not None
    assert models.scale.buyers == 40


def test_too_few_buyers_publish_no_scale() -> None:
    merged = _summary([("u1", 20_000, 1, 500, [])], 10, 10)
    document, _ = fit_population(merged, Settings(clickhouse_url="memory://"), Models(), None)
    assert document["rfm"] is None  # RFM_MIN_BUYERS is 5
    assert document["refit"]["error"]


def test_a_correction_takes_back_the_silence_and_the_label_it_gave() -> None:
    enricher = Enricher(SETTINGS)
    user = UserState("u1", last_event_ms=0, last_interaction_ms=0, stage=Stage.ACTIVE)
    silent = Transition("u1", Stage.ACTIVE, Stage.SILENT, 30 * DAY_MS)
    back = Transition("u1", Stage.SILENT, Stage.ACTIVE, 40 * DAY_MS)
    enricher.on_transitions(user, [silent])
    assert user.churn_snapshot is not None
    assert user.churn_snapshot_ms == 30 * DAY_MS
    enricher.on_transitions(user, [back])
    assert [label[:2] for label in user.churn_labels] == [[40 * DAY_MS, 0]]
    # A late event shows the user was never silent: both are retracted.
    enricher.on_transitions(
        user,
        [
            Transition("u1", Stage.ACTIVE, Stage.SILENT, 30 * DAY_MS, retracted=True),
            Transition("u1", Stage.SILENT, Stage.ACTIVE, 40 * DAY_MS, retracted=True),
        ],
    )
    assert user.churn_labels == []
    # A silence retracted before its label came leaves no snapshot behind.
    enricher.on_transitions(user, [silent])
    enricher.on_transitions(user, [Transition("u1", Stage.ACTIVE, Stage.SILENT, 30 * DAY_MS,
                                              retracted=True)])  # fmt: skip
    assert user.churn_snapshot is None
