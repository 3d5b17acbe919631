"""Classification metrics of a critic's scores."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
)


def _precision_at_recall(y, s, w, recall: float) -> float:
    precision, achieved, _ = precision_recall_curve(y, s, sample_weight=w)
    return float(precision[achieved >= recall].max())


def classification_metrics(y_true, scores, sample_weight=None) -> dict:
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    positives = int(y.sum())
    out: dict = {"n": int(len(y)), "positives": positives}
    if len(y) == 0 or positives in (0, len(y)):
        for key in (
            "roc_auc",
            "average_precision",
            "precision_at_recall_50",
            "precision_at_recall_80",
            "precision_at_recall_90",
            "brier",
        ):
            out[key] = None
        return out
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    out["roc_auc"] = float(roc_auc_score(y, s, sample_weight=w))
    out["average_precision"] = float(average_precision_score(y, s, sample_weight=w))
    for level in (50, 80, 90):
        out[f"precision_at_recall_{level}"] = _precision_at_recall(y, s, w, level / 100)
    out["brier"] = float(brier_score_loss(y, np.clip(s, 0, 1), sample_weight=w))
    return out
