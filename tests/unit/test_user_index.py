"""The API's index of current scores: lists by filters with stable cursors, and counts that
equal scoring every user one by one."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from api.user_index import BadCursor, UserIndex, decode_cursor, encode_cursor
from pipeline.domain.population import money_bucket
from pipeline.domain.rfm import RfmValues, score_on
from pipeline.domain.rfm_scale import RfmScale

# A published scale's money thresholds are bucket bounds (the leader fits on bucketed counts).
SCALE = RfmScale(recency=(20_000, 20_010, 20_020, 20_030), frequency=(2, 3, 5, 8),
                 monetary=tuple(money_bucket(c) for c in (5_000, 10_000, 20_000, 50_000)),
                 version=3, buyers=10)  # fmt: skip
STAGES = ["potential", "new", "active", "silent", "churned"]


def document(stage: str, day: int | None = None, orders: int = 0, cents: int = 0) -> bytes:
    doc: dict[str, Any] = {"stage": stage, "order_count": orders, "monetary": cents / 100,
                           "last_paid_at": None}  # fmt: skip
    if day is not None:
        doc["last_paid_at"] = datetime.fromtimestamp(day * 86_400 + 3_600, tz=UTC).isoformat()
    return orjson.dumps(doc)


users = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=4),
    st.tuples(
        st.sampled_from(STAGES),
        st.one_of(
            st.none(),
            st.tuples(st.integers(19_990, 20_040), st.integers(1, 12), st.integers(0, 80_000)),
        ),
    ),
    max_size=40,
)


def build(data: dict[str, Any]) -> UserIndex:
    index = UserIndex()
    for user, (stage, buy) in data.items():
        index.apply(user, document(stage) if buy is None else document(stage, *buy))
    return index


@settings(max_examples=100, deadline=None)
@given(users)
def test_counts_equal_scoring_every_user(data: dict[str, Any]) -> None:
    counts = build(data).counts(SCALE)
    assert counts["total_users"] == len(data)
    expected = Counter(stage for stage, _ in data.values())
    assert counts["by_stage"] == {s: expected[s] for s in [*STAGES, "none"]}
    scored = [score_on(SCALE, RfmValues(*buy), buy[0]) for _, buy in data.values() if buy]
    assert counts["buyers"] == len(scored)
    assert counts["by_segment"] == dict(sorted(Counter(s.segment for s in scored).items()))
    assert counts["by_class"] == dict(sorted(Counter(s.rfm_class for s in scored).items()))


@settings(max_examples=100, deadline=None)
@given(users, st.sampled_from([None, *STAGES]), st.sampled_from([None, "Champions", "At risk",
       "Hibernating"]), st.sampled_from([None, "A", "B", "C"]), st.integers(1, 7))  # fmt: skip
def test_pages_list_every_match_once_in_id_order(
    data: dict[str, Any], stage: str | None, seg: str | None, cls: str | None, limit: int
) -> None:
    index = build(data)
    seen: list[str] = []
    after = None
    while True:
        items, cursor = index.page(SCALE, stage=stage, segment_=seg, class_=cls, after=after,
                                   limit=limit)  # fmt: skip
        seen += [item["user_id"] for item in items]
        if cursor is None:
            break
        after = decode_cursor(cursor)
    expected = []
    for user in sorted(data):
        user_stage, buy = data[user]
        score = score_on(SCALE, RfmValues(*buy), buy[0]) if buy else None
        if stage is not None and user_stage != stage:
            continue
        if seg is not None and (score is None or score.segment != seg):
            continue
        if cls is not None and (score is None or score.rfm_class != cls):
            continue
        expected.append(user)
    assert seen == expected


def test_a_user_moves_and_a_tombstone_removes_them() -> None:
    index = UserIndex()
    index.apply("u1", document("active", 20_035, 9, 60_000))
    index.apply("u2", document("potential"))
    assert index.counts(SCALE)["by_segment"] == {"Champions": 1}
    index.apply("u1", document("silent", 20_035, 9, 60_000))
    by_stage = index.counts(SCALE)["by_stage"]
    assert {s: n for s, n in by_stage.items() if n} == {"silent": 1, "potential": 1}
    index.apply("u1", None)
    counts = index.counts(SCALE)
    assert (counts["total_users"], counts["buyers"], counts["by_segment"]) == (1, 0, {})
    # Pages continue after the cursor whatever came in before it meanwhile.
    for user in ("b", "d", "f"):
        index.apply(user, document("new"))
    first, cursor = index.page(SCALE, stage="new", limit=2)
    assert [i["user_id"] for i in first] == ["b", "d"]
    assert cursor is not None
    index.apply("a", document("new"))
    index.apply("c", document("new"))
    rest, end = index.page(SCALE, stage="new", after=decode_cursor(cursor), limit=2)
    assert [i["user_id"] for i in rest] == ["f"]
    assert end is None


def test_without_a_published_scale_lists_and_counts_say_what_documents_say() -> None:
    index = UserIndex()
    for user, (seg, cls) in {"a": ("Champions", "A"), "b": ("Hibernating", "C")}.items():
        raw = orjson.loads(document("active", 20_035, 9, 60_000))
        raw["rfm"] = {"segment": seg, "rfm_class": cls}
        index.apply(user, orjson.dumps(raw))
    index.apply("c", document("potential"))
    counts = index.counts(None)
    assert counts["by_segment"] == {"Champions": 1, "Hibernating": 1}
    assert counts["by_class"] == {"A": 1, "C": 1}
    items, _ = index.page(None, segment_="Hibernating")
    assert [(i["user_id"], i["rfm_class"]) for i in items] == [("b", "C")]


def test_cursors_round_trip_and_garbage_is_refused() -> None:
    assert decode_cursor(encode_cursor("用户-1/x")) == "用户-1/x"
    for bad in ("%%%", "a"):
        try:
            decode_cursor(bad)
        except BadCursor:
            continue
        raise AssertionError(f"{bad!r} decoded")


@settings(max_examples=100, deadline=None)
@given(users, users, st.sets(st.text("abcdefgh", min_size=1, max_size=4), max_size=10))
def test_counts_kept_record_by_record_equal_counts_taken_afresh(
    before: dict[str, Any], after: dict[str, Any], erased: set[str]
) -> None:
    index = build(before)
    index.counts(SCALE)  # the per-scale counts are taken here, then kept up to date
    for user, (stage, buy) in after.items():
        index.apply(user, document(stage) if buy is None else document(stage, *buy))
    for user in erased:
        index.apply(user, None)
    final = {**before, **after}
    for user in erased:
        final.pop(user, None)
    assert index.counts(SCALE) == build(final).counts(SCALE)


def test_users_with_no_stage_are_listed_under_none_as_they_are_counted() -> None:
    index = UserIndex()
    index.apply("u1", orjson.dumps({"stage": None, "order_count": 0, "last_paid_at": None}))
    index.apply("u2", document("potential"))
    assert index.counts(SCALE)["by_stage"]["none"] == 1
    items, _ = index.page(SCALE, stage="none")
    assert [item["user_id"] for item in items] == ["u1"]
