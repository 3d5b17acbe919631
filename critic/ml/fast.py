"""The fast critic: a scikit-learn head on pair features of cached embeddings."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from .metrics import classification_metrics

CHUNK = 50_000


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
        out = np.empty(len(u), dtype=np.float32)
        relation_index = np.minimum(np.asarray(relation_index), self.n_relations - 1)
        for start in range(0, len(u), CHUNK):
            end = start + CHUNK
            features = build_features(
                u[start:end], v[start:end], relation_index[start:end], self.n_relations
            )
            out[start:end] = self.model.predict_proba(features)[:, 1]
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
