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
        """P(acceptable), computed from the linear model's weights block by block: the same
        numbers as predict_proba on build_features, without building the wide matrix."""
        n = self.n_relations
        weights = self.model.coef_[0].astype(np.float32)
        dim = (len(weights) - 2 * n - 1) // 4
        w_u, w_v, w_uv, w_abs = (weights[i * dim : (i + 1) * dim] for i in range(4))
        w_relation = weights[4 * dim : 4 * dim + n]
        w_cosine = weights[4 * dim + n]
        w_cosine_relation = weights[4 * dim + n + 1 :]
        bias = float(self.model.intercept_[0])
        relation_index = np.minimum(np.asarray(relation_index), n - 1)
        out = np.empty(len(u), dtype=np.float32)
        for start in range(0, len(u), CHUNK):
            end = start + CHUNK
            uu = np.asarray(u[start:end], dtype=np.float32)
            vv = np.asarray(v[start:end], dtype=np.float32)
            rr = relation_index[start:end]
            product = uu * vv
            logit = (
                uu @ w_u
                + vv @ w_v
                + product @ w_uv
                + np.abs(uu - vv) @ w_abs
                + w_relation[rr]
                + product.sum(axis=1) * (w_cosine + w_cosine_relation[rr])
                + bias
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
) -> FastTrainResult:
    y = np.asarray(labels).astype(int)
    if y.min() == y.max():
        raise ValueError("training needs both acceptable and unacceptable labels")
    x = build_features(u, v, relation_index, n_relations)
    heldout = np.empty(len(y), dtype=np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y):
        w = None if sample_weight is None else np.asarray(sample_weight)[train]
        heldout[test] = _fit(x[train], y[train], w).predict_proba(x[test])[:, 1]
    critic = FastCritic(_fit(x, y, sample_weight), n_relations)
    return FastTrainResult(critic, heldout, classification_metrics(y, heldout))
