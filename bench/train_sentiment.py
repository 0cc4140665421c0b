"""Train the shipped Chinese polarity model (pipeline/domain/sentiment_model.npz).

    python -m bench.train_sentiment

L2-regularised logistic regression (SciPy's L-BFGS-B) on the features of
`pipeline.domain.sentiment_model`, trained on the `train` part of `bench.sentiment_data`;
the regularisation and the lexicon's weight next to the model are chosen on the
`validation` part; the final model learns `train` and `validation`, keeps its largest
weights, and is measured once on the `test` part, which nothing here was chosen on. Prints
one JSON object and writes the weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import scipy.sparse as sp
from scipy.optimize import minimize

from bench.sentiment_data import reviews
from pipeline.domain import sentiment_model as sm
from pipeline.domain.sentiment import lexicon_score

PENALTIES = (0.01, 0.03, 0.1)
LEXICON_WEIGHTS = (0.0, 1.0, 2.0)


def matrix(texts: list[str]) -> sp.csr_matrix:
    indices: list[int] = []
    pointers = [0]
    for text in texts:
        indices += sorted(sm.feature_ids(text))
        pointers.append(len(indices))
    x = sp.csr_matrix((np.ones(len(indices)), indices, pointers), shape=(len(texts), sm.HASH_SPACE))
    norms = np.sqrt(np.maximum(np.diff(x.indptr), 1))
    return sp.diags(1 / norms) @ x


def train(x: sp.csr_matrix, y: np.ndarray, penalty: float) -> np.ndarray:
    sign = 2 * y - 1

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w[:-1] + w[-1]
        grad = -sign / (1 + np.exp(sign * z))
        value = float(np.logaddexp(0, -sign * z).sum() + 0.5 * penalty * w[:-1] @ w[:-1])
        return value, np.append(x.T @ grad + penalty * w[:-1], grad.sum())

    start = np.zeros(x.shape[1] + 1)
    result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 400})
    return np.asarray(result.x)


def accuracy(score: np.ndarray, y: np.ndarray) -> float:
    return float(((score > 0) == (y == 1)).mean())


def main() -> None:
    rows = reviews()
    parts: dict[str, tuple[list[str], np.ndarray]] = {}
    for name in ("train", "validation", "test"):
        texts = [t for t, _, p in rows if p == name]
        parts[name] = (texts, np.array([y for _, y, p in rows if p == name], dtype=float))
    x_train, x_valid = matrix(parts["train"][0]), matrix(parts["validation"][0])
    y_train, y_valid = parts["train"][1], parts["validation"][1]
    lexicon_valid = np.array([lexicon_score(t) for t in parts["validation"][0]])
    chosen: dict[str, Any] = {"accuracy": -1.0}
    for penalty in PENALTIES:
        w = train(x_train, y_train, penalty)
        z = x_valid @ w[:-1] + w[-1]
        for k in LEXICON_WEIGHTS:
            acc = accuracy(z + k * lexicon_valid, y_valid)
            if acc > chosen["accuracy"]:
                chosen = {"accuracy": acc, "penalty": penalty, "lexicon_weight": k}
    x_all = sp.vstack([x_train, x_valid]).tocsr()
    w = train(x_all, np.concatenate([y_train, y_valid]), chosen["penalty"])
    weights, bias = w[:-1], float(w[-1])
    kept = np.argsort(-np.abs(weights))[: sm.KEPT_WEIGHTS]
    kept.sort()
    np.savez_compressed(
        sm.MODEL_FILE,
        ids=kept.astype(np.int32),
        weights=weights[kept].astype(np.float16),
        bias=np.float64(bias),
        lexicon_weight=np.float64(chosen["lexicon_weight"]),
    )
    sm.shipped.cache_clear()
    model = sm.shipped()
    texts, y_test = parts["test"]
    z = np.array([model.logit(t) for t in texts])
    print(
        orjson.dumps(
            {
                "sentences": {k: len(v[0]) for k, v in parts.items()},
                "chosen_on_validation": chosen,
                "test_accuracy_model": round(accuracy(z, y_test), 4),
                "kept_weights": int(kept.size),
                "bias": round(bias, 4),
                "log_odds_range": [round(float(z.min()), 2), round(float(z.max()), 2)],
                "nan": bool(np.isnan(z).any()) or not math.isfinite(bias),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
