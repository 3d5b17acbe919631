"""The fast critic: a scikit-learn head on pair features of cached embeddings."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from .metrics import classification_metrics

# Rows per block of the linear head: small enough that its temporaries stay in the CPU
# cache (2.6x faster here than 50,000-row blocks).
CHUNK = 2048


def build_features(u, v, relation_index, n_relations: int) -> np.ndarray:
    """[u, v, u·v, |u−v|, relation one-hot, cos(u, v), cos(u, v) per relation].

    The cosine, alone and per relation, lets a linear head say how close a tail must be
    to its head for each relation (+0.02 held-out AUC on the proxy task at 8,000 labels).
    """
    u = np.asarray(u, dtype=np.float32)
    v = np.asarray(v, dtype=np.float32)
    onehot = np.zeros((len(u), n_relations), dtype=np.float32)
    onehot[np.arange(len(u)), np.asarray(relation_index)] = 1.0
    product = u * v
    cosine = product.sum(axis=1, keepdims=True)
    return np.hstack([u, v, product, np.abs(u - v), onehot, cosine, cosine * onehot])


class FastCritic:
    def __init__(self, model: LogisticRegression, n_relations: int) -> None:
        self.model = model
        self.n_relations = n_relations

    def predict(self, u, v, relation_index) -> np.ndarray:
        """P(acceptable) of each row's pair (u, v)."""
        rows = np.arange(len(u))
        return self.predict_indexed(u, rows, v, rows, relation_index)

    def predict_indexed(self, firsts, first_of_row, seconds, second_of_row, relation_index):
        """P(acceptable) of each row's pair (firsts[first_of_row], seconds[second_of_row]):
        the same numbers as predict_proba on build_features, computed from the linear
        model's weights block by block, without building the wide matrix. Terms of one
        side alone are computed once per distinct text."""
        n = self.n_relations
        weights = self.model.coef_[0].astype(np.float32)
        dim = (len(weights) - 2 * n - 1) // 4
        w_u, w_v, w_uv, w_abs = (weights[i * dim : (i + 1) * dim] for i in range(4))
        w_relation = weights[4 * dim : 4 * dim + n]
        w_cosine = weights[4 * dim + n]
        w_cosine_relation = weights[4 * dim + n + 1 :]
        # (u∘v)·w_uv and the plain u·v (the cosine) from one product matrix.
        w_product = np.stack([w_uv, np.ones_like(w_uv)], axis=1)
        firsts = np.asarray(firsts, dtype=np.float32)
        seconds = np.asarray(seconds, dtype=np.float32)
        first_terms = firsts @ w_u
        second_terms = seconds @ w_v
        relation_index = np.minimum(np.asarray(relation_index), n - 1)
        constant = w_relation + float(self.model.intercept_[0])
        cosine_weight = w_cosine + w_cosine_relation
        out = np.empty(len(first_of_row), dtype=np.float32)
        for start in range(0, len(out), CHUNK):
            end = start + CHUNK
            f, s, r = first_of_row[start:end], second_of_row[start:end], relation_index[start:end]
            uu = np.take(firsts, f, axis=0)
            vv = np.take(seconds, s, axis=0)
            products = (uu * vv) @ w_product
            np.subtract(uu, vv, out=uu)
            np.abs(uu, out=uu)
            logit = (
                first_terms[f]
                + second_terms[s]
                + products[:, 0]
                + uu @ w_abs
                + constant[r]
                + products[:, 1] * cosine_weight[r]
            )
            out[start:end] = expit(logit)
        return out

    def to_bytes(self) -> bytes:
        return pickle.dumps(self)

    @staticmethod
    def from_bytes(data: bytes) -> FastCritic:
        return pickle.loads(data)


@dataclass
class FastTrainResult:
    critic: FastCritic
    heldout_scores: np.ndarray
    metrics: dict


def _fit(x, y, sample_weight=None) -> LogisticRegression:
    return LogisticRegression(C=0.5, max_iter=2000).fit(x, y, sample_weight=sample_weight)


def _rows(examples: np.ndarray, n: int, copies: int) -> np.ndarray:
    """The rows of these examples in every copy (copy-major layout)."""
    return (np.arange(copies)[:, None] * n + examples[None, :]).ravel()


def _fit_examples(x, examples, n, copies, targets, weights) -> LogisticRegression:
    """Fit the head on all copies of the examples. A target strictly between 0 and 1 (a
    soft label) is fitted as two rows: acceptable with weight p, not with weight 1 - p."""
    rows = _rows(examples, n, copies)
    p = np.tile(targets[examples], copies)
    w = np.tile(weights[examples], copies) / copies
    if ((p == 0) | (p == 1)).all():
        plain = bool((w == 1).all())
        return _fit(x[rows], p.astype(int), None if plain else w)
    pos, neg = p > 0, p < 1
    return _fit(
        np.vstack([x[rows[pos]], x[rows[neg]]]),
        np.concatenate([np.ones(pos.sum(), int), np.zeros(neg.sum(), int)]),
        np.concatenate([w[pos] * p[pos], w[neg] * (1 - p[neg])]),
    )


def _predict_examples(model, x, examples, n, copies) -> np.ndarray:
    """P(acceptable) of each example: the mean over its copies."""
    scores = model.predict_proba(x[_rows(examples, n, copies)])[:, 1]
    return scores.reshape(copies, len(examples)).mean(axis=0)


def train_fast_critic(
    u,
    v,
    relation_index,
    n_relations: int,
    labels,
    *,
    folds: int = 5,
    seed: int = 0,
    sample_weight=None,
    targets=None,
    copies: int = 1,
) -> FastTrainResult:
    """Fit the head on k-fold splits (held-out scores) and on all labels (the critic).

    `labels` (0/1, one per example) stratify the folds and measure held-out quality.
    `targets`, P(acceptable) per example, are fitted instead when given (soft labels);
    `sample_weight` weighs each example (as scikit-learn's: 0 is as if absent; the head's
    regularization does not scale with it). `copies`: u, v and relation_index hold that many
    rows per example, copy after copy (rows c·n … c·n + n − 1 are copy c: the name-swap
    draws); a fold holds every copy of its examples, each copy weighs 1/copies, and an
    example's held-out score is the mean over its copies, as when it is scored.
    """
    y = np.asarray(labels).astype(int)
    if y.min() == y.max():
        raise ValueError("training needs both acceptable and unacceptable labels")
    n = len(y)
    x = build_features(u, v, relation_index, n_relations)
    if len(x) != n * copies:
        raise ValueError(f"expected {n * copies} rows ({copies} per label), got {len(x)}")
    t = y.astype(np.float64) if targets is None else np.clip(np.asarray(targets, float), 0, 1)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if len(w) != n or (w < 0).any() or w.sum() <= 0:
        raise ValueError("sample weights must be one per label, non-negative, not all zero")
    heldout = np.empty(n, dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(n), y):
        model = _fit_examples(x, train, n, copies, t, w)
        heldout[test] = _predict_examples(model, x, test, n, copies)
    critic = FastCritic(_fit_examples(x, np.arange(n), n, copies, t, w), n_relations)
    return FastTrainResult(critic, heldout, classification_metrics(y, heldout))
