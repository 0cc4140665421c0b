"""Offline sentiment of chat messages and live comments, in Chinese and English.

A hand-written lexicon (negation, intensifiers, contrast, emoji and emoticons) for both
languages; for Chinese text the shipped polarity model (`sentiment_model`, trained on review
sentences nobody on the team wrote) decides with the lexicon beside it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pipeline.domain import sentiment_lexicon as lex
from pipeline.domain import sentiment_model

Label = Literal["positive", "neutral", "negative"]

ALPHA = 4.0  # score = s / sqrt(s^2 + ALPHA): one clear term (weight 1) scores about 0.45
NEUTRAL_BAND = 0.2  # |score| below this is neutral: a weak term (about 0.4) alone stays neutral
QUESTION_DAMPING = 0.4  # questions are mostly requests ("能退换吗", "is it good?")
EXCLAMATION_BOOST = 0.05  # per "!", at most four
CONTRAST_BEFORE, CONTRAST_AFTER = 0.5, 1.5  # "不错，但是太贵了": the clause after "but" wins
NEGATION_FLIP = -0.75  # "不贵" is positive, but less than "便宜"
ZH_NEGATION_GAP = 3  # characters allowed between a Chinese negator and its term
EN_NEGATION_GAP = 2  # words allowed between (the negator within 3 tokens before the term)
INTENSIFIER_GAP = 1  # items allowed between an intensifier and its term
MAX_INTENSITY = 2.5
MAX_PHRASE_WORDS = 4
# Chinese text with no lexicon term is neutral unless the model's log-odds reach this
# (P > 0.993): most such comments are questions and chatter ("几点开播").
MODEL_ALONE_LOGIT = 5.0
# A short comment ("不贵", "从来没让我失望", "这个好用吗?") where the lexicon has an opinion
# is the lexicon's: its negation, question and contrast rules read it better than n-grams
# learnt from long reviews.
SHORT_TEXT = 12
# A strongly worded opinion is the lexicon's at any length: the model learnt on shop and
# hotel reviews misreads livestream wording ("这个口红太好看了，必须回购" came out negative).
STRONG_LEXICON = 0.8
_CJK = re.compile(r"[\u4e00-\u9fff]")

# Full-width punctuation is ASCII after NFKC; "。", "、" and the CJK brackets are not.
_BREAKS = frozenset('.,!?;:~\n\r\t()[]{}"。、【】「」《》')
_QUESTION_ENDINGS = ("吗", "呢", "么", "嘛")
_ELONGATED = re.compile(r"([a-z])\1{2,}")
_STRIP = {0xFE0F: None, 0xFE0E: None, 0x200D: None, 0x2019: "'", 0x2018: "'", ord("-"): " "}
_STRIP.update({cp: None for cp in range(0x1F3FB, 0x1F400)})  # skin-tone modifiers

_TERM, _NEG, _INT, _CONTRAST, _DUAL, _OTHER, _BREAK = range(7)
_Entry = tuple[int, float, float]  # kind, weight (polarity or multiplier), dual multiplier


@dataclass(frozen=True)
class Sentiment:
    """A label and a score in [-1, 1] (negative to positive; near 0 is neutral)."""

    label: Label
    score: float


@dataclass(slots=True)
class _Item:
    kind: int
    weight: float = 0.0
    alt: float = 0.0
    zh: bool = False
    # An emoji or a text emoticon: the writer's own feeling, which no word before it negates
    # ("nothing for redheads :(" is negative).
    symbol: bool = False


def _vocab(
    terms: Mapping[str, float],
    dual: Mapping[str, tuple[float, float]],
    negators: Iterable[str],
    intensifiers: Mapping[str, float],
    contrast: Iterable[str],
    neutral: Iterable[str],
) -> dict[str, _Entry]:
    out: dict[str, _Entry] = {w: (_OTHER, 0.0, 0.0) for w in neutral}
    out.update({w: (_NEG, 0.0, 0.0) for w in negators})
    out.update({w: (_CONTRAST, 0.0, 0.0) for w in contrast})
    out.update({w: (_INT, m, 0.0) for w, m in intensifiers.items()})
    out.update({w: (_TERM, p, 0.0) for w, p in terms.items()})
    out.update({w: (_DUAL, p, m) for w, (p, m) in dual.items()})
    return out


_ZH = _vocab(
    {**lex.ZH_TERMS, **lex.EMOJI},
    lex.ZH_DUAL,
    lex.ZH_NEGATORS,
    lex.ZH_INTENSIFIERS,
    lex.ZH_CONTRAST,
    lex.ZH_NEUTRAL,
)
_EN = _vocab(
    lex.EN_TERMS,
    lex.EN_DUAL,
    lex.EN_NEGATORS,
    lex.EN_INTENSIFIERS,
    lex.EN_CONTRAST,
    lex.EN_NEUTRAL,
)
# First character -> the lengths of the Chinese entries starting with it, longest first.
_ZH_LENGTHS: dict[str, tuple[int, ...]] = {}
for _key in _ZH:
    _ZH_LENGTHS[_key[0]] = tuple(sorted({*_ZH_LENGTHS.get(_key[0], ()), len(_key)}, reverse=True))


def _is_word_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "'")


def _canonical(word: str) -> str:
    """A known spelling of an elongated word: "sooo" -> "so", "goooood" -> "good"."""
    if word in _EN or not _ELONGATED.search(word):
        return word
    for shorter in (_ELONGATED.sub(r"\1\1", word), _ELONGATED.sub(r"\1", word)):
        if shorter in _EN:
            return shorter
    return word


def _flush_words(words: list[str], items: list[_Item]) -> None:
    """Match English words against the lexicon, longest phrase first."""
    k = 0
    while k < len(words):
        for size in range(min(MAX_PHRASE_WORDS, len(words) - k), 0, -1):
            entry = _EN.get(" ".join(words[k : k + size]))
            if entry is not None:
                items.append(_Item(entry[0], entry[1], entry[2]))
                k += size
                break
        else:
            items.append(_Item(_NEG if words[k].endswith("n't") else _OTHER))
            k += 1
    words.clear()


def _match_zh(text: str, i: int, longest: int) -> tuple[int, _Entry] | None:
    for size in _ZH_LENGTHS.get(text[i], ()):
        entry = _ZH.get(text[i : i + size]) if size <= longest else None
        if entry is not None:
            return size, entry
    return None


def _match_zh_at(text: str, i: int) -> tuple[int, _Entry] | None:
    """The longest entry at `i`, unless it is a modifier cutting into a term that runs past it.

    "都不错" reads "都" + "不错", not "都不" + "错"; "晚上好" (neutral) still blocks "好看".
    """
    match = _match_zh(text, i, len(text) - i)
    if match is None or match[0] == 1 or match[1][0] not in (_NEG, _INT, _CONTRAST):
        return match
    size = match[0]
    for p in range(i + 1, i + size):
        inner = _match_zh(text, p, len(text) - p)
        if inner is not None and inner[1][0] == _TERM and p + inner[0] > i + size:
            return _match_zh(text, i, p - i)
    return match


def _items(text: str) -> list[_Item]:
    """Split normalised text into lexicon items, gaps and clause breaks, in order."""
    items: list[_Item] = []
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if _is_word_char(c):
            j = i + 1
            while j < n and _is_word_char(text[j]):
                j += 1
            word = text[i:j].strip("'")
            if word:
                words.append(_canonical(word))
            i = j
            continue
        if c.isspace():
            i += 1
            continue
        _flush_words(words, items)
        match = _match_zh_at(text, i)
        if match is not None:
            size, (kind, weight, alt) = match
            symbol = kind == _TERM and not any(ch.isalpha() for ch in text[i : i + size])
            items.append(_Item(kind, weight, alt, zh=True, symbol=symbol))
            i += size
            continue
        items.append(_Item(_BREAK) if c in _BREAKS else _Item(_OTHER, zh=True))
        i += 1
    _flush_words(words, items)
    for k, item in enumerate(items):  # a dual word intensifies a term right after it
        if item.kind == _DUAL:
            follows = k + 1 < len(items) and items[k + 1].kind in (_TERM, _DUAL)
            item.kind, item.weight = (_INT, item.alt) if follows else (_TERM, item.weight)
    return items


def _modifier(items: list[_Item], k: int) -> float:
    """Intensity and negation of the term at `k` from the items just before it in its clause."""
    intensity, negations = 1.0, 0
    for between, j in enumerate(range(k - 1, -1, -1)):  # `between`: items between j and k
        before = items[j]
        if before.kind in (_BREAK, _TERM, _CONTRAST) or between > ZH_NEGATION_GAP:
            break
        if before.kind == _INT and between <= INTENSIFIER_GAP:
            intensity *= before.weight
        elif before.kind == _NEG:
            negations += between <= (ZH_NEGATION_GAP if before.zh else EN_NEGATION_GAP)
    intensity = min(intensity, MAX_INTENSITY)
    return intensity * (NEGATION_FLIP if negations % 2 else 1.0)


def _is_question(text: str) -> bool:
    core = text.rstrip("".join(_BREAKS - {"?"}) + " ")
    return "?" in text or core.endswith(_QUESTION_ENDINGS)


def normalise(text: str) -> str:
    """NFKC (full-width to ASCII), lower case, no emoji variation selectors or skin tones."""
    return unicodedata.normalize("NFKC", text).lower().translate(_STRIP)


def raw_score(text: str) -> float:
    """The unbounded sum of the weighted terms of `text` (0 when it has none)."""
    text = normalise(text)
    items = _items(text)
    contributions: list[float] = []
    after = 1.0
    for k, item in enumerate(items):
        if item.kind == _CONTRAST:
            contributions = [c * CONTRAST_BEFORE for c in contributions]
            after = CONTRAST_AFTER
        elif item.kind == _TERM:
            modifier = 1.0 if item.symbol else _modifier(items, k)
            contributions.append(item.weight * modifier * after)
    total = math.fsum(contributions)
    if _is_question(text):
        total *= QUESTION_DAMPING
    return total * (1.0 + EXCLAMATION_BOOST * min(text.count("!"), 4))


def lexicon_score(text: str) -> float:
    """The lexicon's score of `text` alone, in (-1, 1) (0 when it has no term)."""
    s = raw_score(text)
    return s / math.hypot(s, math.sqrt(ALPHA))


# Live comments repeat a lot ("666", "好看", "买了"): short texts' results are kept.
CACHED_TEXT_LENGTH = 64


# The events whose text is classified: live comments and chat messages and replies.
TEXT_TYPES = frozenset({"comment", "message", "reply"})


def classify(text: str) -> Sentiment:
    """The sentiment of one chat message or live comment (any length; empty is neutral)."""
    if len(text) <= CACHED_TEXT_LENGTH:
        return _classify_short(text)
    return _classify(text)


@lru_cache(maxsize=65_536)
def _classify_short(text: str) -> Sentiment:
    return _classify(text)


def polarity(text: str) -> tuple[float, float | None]:
    """The lexicon's score of `text` and, where the shipped model decides (Chinese text
    that neither is a short comment with a lexicon opinion nor has a strong one), its
    log-odds of positive with the lexicon beside it; else None."""
    score = lexicon_score(text)
    lexicon_decides = abs(score) >= STRONG_LEXICON or (
        len(text) <= SHORT_TEXT and abs(score) >= NEUTRAL_BAND
    )
    if lexicon_decides or _CJK.search(text) is None:
        return score, None
    model = sentiment_model.shipped()
    return score, model.logit(text) + model.lexicon_weight * score


def _classify(text: str) -> Sentiment:
    score, z = polarity(text)
    # A Chinese text with no lexicon term stays neutral unless the model alone is all but
    # sure.
    if z is not None and (abs(score) >= NEUTRAL_BAND or abs(z) >= MODEL_ALONE_LOGIT):
        score = math.tanh(z / 2)
    if score >= NEUTRAL_BAND:
        return Sentiment("positive", score)
    if score <= -NEUTRAL_BAND:
        return Sentiment("negative", score)
    return Sentiment("neutral", score)
