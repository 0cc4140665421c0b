"""Decayed engagement (order independence, half-life, late events) and offline sentiment."""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain import sentiment_lexicon as lex
from pipeline.domain.engagement import (
    INTERACTION_WEIGHTS,
    Engagement,
    add,
    interaction_amount,
    value_at,
    watch_amount,
)
from pipeline.domain.sentiment import Sentiment, classify

EVAL_SET = Path(__file__).resolve().parents[1] / "data" / "sentiment_eval.jsonl"
LABELS = ("positive", "neutral", "negative")
T0 = 1_700_000_000_000
HOUR = 3_600_000

# ---------------------------------------------------------------- engagement

events_st = st.lists(
    st.tuples(
        st.integers(min_value=T0, max_value=T0 + 30 * 24 * HOUR),
        st.floats(min_value=0.0, max_value=1_000.0, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=40,
)
half_life_st = st.integers(min_value=HOUR, max_value=30 * 24 * HOUR)


def _closed_form(events: list[tuple[int, float]], half_life_ms: int) -> float:
    latest = max(ts for ts, _ in events)
    return math.fsum(a * 2 ** (-(latest - ts) / half_life_ms) for ts, a in events)


def _fold(events: list[tuple[int, float]], half_life_ms: int) -> Engagement:
    e = Engagement()
    for ts, amount in events:
        add(e, ts, amount, half_life_ms)
    return e


@settings(max_examples=300, deadline=None)
@given(events=events_st, half_life_ms=half_life_st, data=st.data())
def test_engagement_is_order_independent(
    events: list[tuple[int, float]], half_life_ms: int, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events))
    a, b = _fold(events, half_life_ms), _fold(shuffled, half_life_ms)
    assert a.at_ms == b.at_ms == max(ts for ts, _ in events)
    assert math.isclose(a.value, b.value, rel_tol=1e-9, abs_tol=1e-300)
    assert math.isclose(a.value, _closed_form(events, half_life_ms), rel_tol=1e-9, abs_tol=1e-300)


@settings(max_examples=200, deadline=None)
@given(
    events=events_st,
    half_life_ms=half_life_st,
    later=st.lists(st.integers(min_value=0, max_value=400 * 24 * HOUR), min_size=2, max_size=5),
)
def test_engagement_value_never_increases_with_time(
    events: list[tuple[int, float]], half_life_ms: int, later: list[int]
) -> None:
    e = _fold(events, half_life_ms)
    assert e.at_ms is not None
    values = [value_at(e, e.at_ms + dt, half_life_ms) for dt in sorted(later)]
    assert all(v2 <= v1 for v1, v2 in itertools.pairwise(values))
    assert value_at(e, e.at_ms - HOUR, half_life_ms) == e.value  # never extrapolated backwards


def test_half_life_halves_the_value() -> None:
    e = Engagement()
    add(e, T0, 10.0, HOUR)
    assert value_at(e, T0 + HOUR, HOUR) == pytest.approx(5.0)
    assert value_at(e, T0 + 3 * HOUR, HOUR) == pytest.approx(1.25)
    add(e, T0 + HOUR, 0.0, HOUR)  # a zero-point event moves the reference time
    assert (e.value, e.at_ms) == (pytest.approx(5.0), T0 + HOUR)


def test_late_event_is_added_decayed_and_keeps_the_reference_time() -> None:
    e = Engagement()
    add(e, T0 + 2 * HOUR, 4.0, HOUR)
    add(e, T0, 4.0, HOUR)  # two half-lives late
    assert e.at_ms == T0 + 2 * HOUR
    assert e.value == pytest.approx(4.0 + 1.0)
    add(e, T0 + 3 * HOUR, 1.0, HOUR)  # a newer event decays the kept value forward
    assert e.value == pytest.approx(2.5 + 1.0)


def test_empty_engagement_and_bad_arguments() -> None:
    e = Engagement()
    assert value_at(e, T0, HOUR) == 0.0
    with pytest.raises(ValueError, match="half_life_ms"):
        add(e, T0, 1.0, 0)
    with pytest.raises(ValueError, match="amount"):
        add(e, T0, -1.0, HOUR)
    with pytest.raises(ValueError, match="amount"):
        add(e, T0, math.nan, HOUR)
    assert e == Engagement()


def test_engagement_round_trips_through_json() -> None:
    e = Engagement()
    add(e, T0, 3.5, HOUR)
    add(e, T0 - HOUR, 1.0, HOUR)
    back = Engagement.from_dict(orjson.loads(orjson.dumps(e.to_dict())))
    assert back == e
    assert Engagement.from_dict(Engagement().to_dict()) == Engagement()


def test_amount_weights() -> None:
    assert watch_amount(60) == 1.0
    assert watch_amount(90) == 1.5
    assert watch_amount(0) == watch_amount(-5) == watch_amount(math.nan) == 0.0
    assert interaction_amount("like") == 0.5
    assert interaction_amount("touch_clicked") == 1.0
    assert interaction_amount("touch_sent") == interaction_amount("touch_opened") == 0.0
    assert interaction_amount("no_such_type") == 0.0
    for kind in ("comment", "share", "follow", "product_click", "private_join", "order_paid"):
        assert 2.0 <= interaction_amount(kind) <= 5.0, kind
    assert all(w >= 0 for w in INTERACTION_WEIGHTS.values())


# ---------------------------------------------------------------- sentiment


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("这件衣服好看，面料也舒服", "positive"),
        ("超级划算，已经回购三次了", "positive"),
        ("主播yyds 👍", "positive"),
        ("The fabric is great and it fits well", "positive"),
        ("So happy with this, highly recommend ❤️", "positive"),
        ("垃圾，假货，要退款", "negative"),
        ("太贵了，而且发货慢", "negative"),
        ("客服骗人，差评😡", "negative"),
        ("Terrible quality, total waste of money", "negative"),
        ("Fake product, I want a refund 👎", "negative"),
        ("这款有红色吗\uff1f", "neutral"),  # full-width question mark
        ("今晚八点开播", "neutral"),
        ("Which link is the red dress?", "neutral"),
        ("Just ordered one", "neutral"),
    ],
)
def test_labels(text: str, label: str) -> None:
    assert classify(text).label == label


@pytest.mark.parametrize(
    ("plain", "negated"),
    [
        ("好看", "不好看"),
        ("满意", "不太满意"),
        ("推荐", "并不推荐"),
        ("贵", "不贵"),
        ("失望", "从来没让我失望"),
        ("色差", "没有色差"),
        ("good", "not good"),
        ("recommend", "wouldn't recommend"),
        ("disappointed", "not disappointed at all"),
        ("worth the money", "not really worth the money"),
        ("bad", "never bad"),
    ],
)
def test_negation_flips_the_sign(plain: str, negated: str) -> None:
    a, b = classify(plain), classify(negated)
    assert a.label != "neutral"
    assert b.label != "neutral"
    assert a.label != b.label


def test_negation_scope_is_limited() -> None:
    # The negator is more than a few characters/tokens away, or in another clause.
    assert classify("不知道为什么大家都说好看").label == "positive"
    assert classify("no, I think it's good").label == "positive"
    assert classify("Not one thing I would change, it was ever so good").label == "positive"


def test_intensifiers_and_contrast() -> None:
    assert classify("非常好看").score > classify("好看").score > 0
    assert classify("very good").score > classify("good").score > 0
    assert classify("有点贵").score > classify("贵").score
    assert classify("质量不错，但是太贵了").label == "negative"
    assert classify("A bit pricey but totally worth it").label == "positive"
    assert classify("goooood").label == "positive"


def test_questions_are_damped() -> None:
    assert 0 < classify("这个好用吗?").score < classify("这个好用").score
    assert classify("Is it good?").label == "neutral"
    assert classify("能退款吗").label == "neutral"
    assert classify("退款").label == "negative"


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "。。。", "???", "🙂", "12345", "🤔🤔"])
def test_no_sentiment_is_neutral(text: str) -> None:
    assert classify(text) == Sentiment("neutral", 0.0)


def test_emoji_only() -> None:
    assert classify("👍👍👍").label == "positive"
    assert classify("❤️").label == "positive"
    assert classify("😡👎").label == "negative"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("nothing for redheads :(", "negative"),  # was positive (0.29): "nothing" negated ":("
        ("not happy :(", "negative"),
        ("never again 😡", "negative"),
        ("没有一个不喜欢的😍", "positive"),
        ("不好😞", "negative"),
    ],
)
def test_emoji_and_emoticons_are_not_negated_by_the_words_before_them(
    text: str, label: str
) -> None:
    assert classify(text).label == label


@pytest.mark.parametrize(
    "text",
    [
        # Found in use: over 12 characters, so the model decided, and the model learnt on
        # shop and hotel reviews read these live comments as negative.
        "这个口红太好看了，必须回购",
        "这个口红太好看了，我要回购",
        "这个价格太划算了吧，冲冲冲",
    ],
)
def test_strongly_worded_comments_are_the_lexicon_s(text: str) -> None:
    assert classify(text).label == "positive"


def test_very_long_text() -> None:
    text = "质量很好，" * 20_000 + "great " * 20_000 + "垃圾" * 10_000
    started = time.perf_counter()
    result = classify(text)
    assert -1.0 <= result.score <= 1.0
    assert time.perf_counter() - started < 10.0


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_gives_a_bounded_consistent_score(text: str) -> None:
    result = classify(text)
    assert -1.0 <= result.score <= 1.0
    expected = "positive" if result.score >= 0.2 else "negative" if result.score <= -0.2 else None
    assert result.label == (expected or "neutral")


def test_lexicon_kinds_do_not_overlap() -> None:
    zh: list[set[str]] = [
        {*lex.ZH_TERMS, *lex.EMOJI},
        set(lex.ZH_DUAL),
        set(lex.ZH_NEGATORS),
        set(lex.ZH_INTENSIFIERS),
        set(lex.ZH_CONTRAST),
        set(lex.ZH_NEUTRAL),
    ]
    en: list[set[str]] = [
        set(lex.EN_TERMS),
        set(lex.EN_DUAL),
        set(lex.EN_NEGATORS),
        set(lex.EN_INTENSIFIERS),
        set(lex.EN_CONTRAST),
        set(lex.EN_NEUTRAL),
    ]
    for group in (zh, en):
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                assert not a & b
    assert not set(lex.ZH_TERMS) & set(lex.EMOJI)
    assert all(k == k.lower() for k in (*lex.EN_TERMS, *lex.EN_NEUTRAL, *lex.EN_INTENSIFIERS))


# ---------------------------------------------------------------- evaluation set


def _eval_rows() -> list[dict[str, Any]]:
    with EVAL_SET.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_eval_set_shape() -> None:
    rows = _eval_rows()
    assert len(rows) >= 240
    assert all(set(r) == {"text", "lang", "label"} for r in rows)
    cells = Counter((r["lang"], r["label"]) for r in rows)
    assert set(cells) == {(lang, label) for lang in ("zh", "en") for label in LABELS}
    assert min(cells.values()) >= 30  # roughly balanced
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts)
    vocabulary = {*lex.ZH_TERMS, *lex.EN_TERMS, *lex.EMOJI}
    bare_entries = [t for t in texts if t.lower() in vocabulary]
    assert len(bare_entries) <= len(texts) * 0.02  # sentences, not the lexicon's entries


def test_eval_set_accuracy() -> None:
    rows = _eval_rows()
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    confusion: Counter[tuple[str, str]] = Counter()
    for row in rows:
        got = classify(row["text"]).label
        total[row["lang"]] += 1
        right[row["lang"]] += got == row["label"]
        confusion[(row["label"], got)] += 1
    overall = sum(right.values()) / len(rows)
    by_lang = {lang: right[lang] / total[lang] for lang in sorted(total)}
    print(f"\nsentiment accuracy on {EVAL_SET.name} ({len(rows)} texts)")
    for lang, acc in by_lang.items():
        print(f"  {lang}: {acc:.3f} ({right[lang]}/{total[lang]})")
    print(f"  overall: {overall:.3f}")
    print("  confusion (rows = expected, columns = predicted)")
    print("  " + " " * 10 + "".join(f"{p:>10}" for p in LABELS))
    for expected in LABELS:
        print("  " + f"{expected:>10}" + "".join(f"{confusion[(expected, p)]:>10}" for p in LABELS))
    assert overall >= 0.75
    for lang, acc in by_lang.items():
        assert acc >= 0.70, lang
