"""The stacked critic: a logistic regression on the two tiers' scores (as logits), fitted
on labels that both tiers scored out of sample, and used only where it beats each tier
alone on those labels. No Django import here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

STACKED = "stacked"
# Fewer honest labels than this per class: no stacker is fitted, the better tier is used.
MIN_PER_CLASS = 10


def _logit(p) -> np.ndarray:
    return logit(np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6))


@dataclass(frozen=True)
class Stacker:
    """P(acceptable) = σ(a · logit(fast) + b · logit(cross) + c)."""

    fast_weight: float
    cross_weight: float
    intercept: float

    def predict(self, fast_scores, cross_scores) -> np.ndarray:
        z = (
            self.fast_weight * _logit(fast_scores)
            + self.cross_weight * _logit(cross_scores)
            + self.intercept
        )
        return expit(z)

    def as_dict(self) -> dict:
        return {
            "fast_weight": self.fast_weight,
            "cross_weight": self.cross_weight,
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Stacker:
        return cls(
            float(data["fast_weight"]), float(data["cross_weight"]), float(data["intercept"])
        )


def _fit(fast, cross, labels) -> Stacker:
    x = np.column_stack([_logit(fast), _logit(cross)])
    model = LogisticRegression(C=1.0).fit(x, labels)
    return Stacker(float(model.coef_[0][0]), float(model.coef_[0][1]), float(model.intercept_[0]))


@dataclass
class StackResult:
    chosen: str  # "stacked", "fast" or "cross-encoder"
    stacker: Stacker | None
    # ROC-AUC of each tier and of the stacker on the same labels (all scored out of
    # sample: the fast tier's folds, the cross-encoder's held-out share, the stacker's
    # own folds over that share); None where it could not be measured.
    roc_auc: dict[str, float | None]
    heldout_scores: np.ndarray  # the chosen way's out-of-sample score per label given
    labels: int


def stack_tiers(fast_scores, cross_scores, labels, *, folds: int = 5, seed: int = 0) -> StackResult:
    """Fit the stacker on labels both tiers scored out of sample, measure it out of fold
    against each tier alone on those labels, and choose: the stacker when it beats both,
    else the better tier."""
    fast_scores = np.asarray(fast_scores, dtype=np.float64)
    cross_scores = np.asarray(cross_scores, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    if not len(y) == len(fast_scores) == len(cross_scores):
        raise ValueError("one fast score, one cross-encoder score and one label per row")
    per_class = min(int(y.sum()), int(len(y) - y.sum()))
    auc: dict[str, float | None] = {STACKED: None, "fast": None, "cross-encoder": None}
    if per_class == 0:
        return StackResult("cross-encoder", None, auc, cross_scores, len(y))
    auc["fast"] = float(roc_auc_score(y, fast_scores))
    auc["cross-encoder"] = float(roc_auc_score(y, cross_scores))
    best_member = "fast" if auc["fast"] > auc["cross-encoder"] else "cross-encoder"
    member_scores = fast_scores if best_member == "fast" else cross_scores
    if per_class < MIN_PER_CLASS:
        return StackResult(best_member, None, auc, member_scores, len(y))
    stacked = np.empty(len(y))
    splitter = StratifiedKFold(n_splits=min(folds, per_class), shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(y)), y):
        stacked[test] = _fit(fast_scores[train], cross_scores[train], y[train]).predict(
            fast_scores[test], cross_scores[test]
        )
    auc[STACKED] = float(roc_auc_score(y, stacked))
    if auc[STACKED] > max(auc["fast"], auc["cross-encoder"]):
        return StackResult(STACKED, _fit(fast_scores, cross_scores, y), auc, stacked, len(y))
    return StackResult(best_member, None, auc, member_scores, len(y))
