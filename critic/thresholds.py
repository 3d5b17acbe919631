"""Threshold arithmetic: histograms of corpus scores and label-based estimates.

Everything here works on small arrays (a histogram of HISTOGRAM_BINS counts per
relation, a few thousand labels), so a threshold change costs microseconds
whatever the corpus size. No Django imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

HISTOGRAM_BINS = 1000
RECALL_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9)


def bin_of(scores: np.ndarray) -> np.ndarray:
    return np.minimum(
        (np.clip(scores, 0.0, 1.0) * HISTOGRAM_BINS).astype(np.int64), HISTOGRAM_BINS - 1
    )


def snap(threshold: float) -> float:
    """Thresholds move on the histogram's grid, so counts are exact."""
    return round(min(max(threshold, 0.0), 1.0) * HISTOGRAM_BINS) / HISTOGRAM_BINS


def kept_from_histogram(counts: np.ndarray, threshold: float) -> int:
    """Triples scoring >= threshold (threshold on the grid)."""
    first = int(round(snap(threshold) * HISTOGRAM_BINS))
    return int(counts[first:].sum())


def recall_thresholds(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """The SKD release's cut-offs: for each recall level, the highest threshold that
    keeps at least that share of the acceptable labels."""
    positives = np.sort(scores[labels == 1])[::-1]
    if not len(positives):
        return {}
    out = {}
    for level in RECALL_LEVELS:
        index = max(int(np.ceil(level * len(positives))) - 1, 0)
        # Floor to the grid so the cut keeps at least that recall.
        out[f"rec_{round(level * 100)}"] = float(
            np.floor(positives[index] * HISTOGRAM_BINS) / HISTOGRAM_BINS
        )
    return out


def curve_points(labels: np.ndarray, scores: np.ndarray, points: int = 101) -> dict:
    """PR and ROC curves at evenly spaced thresholds, for plotting."""
    if not len(labels) or labels.min() == labels.max():
        return {}
    grid = np.linspace(0.0, 1.0, points)
    order = np.sort(scores)
    positives = labels == 1
    pr, roc = [], []
    n_pos, n_neg = positives.sum(), (~positives).sum()
    for t in grid:
        kept = scores >= t
        tp = int((kept & positives).sum())
        fp = int((kept & ~positives).sum())
        if tp + fp:
            pr.append([round(tp / n_pos, 4), round(tp / (tp + fp), 4), round(float(t), 3)])
        roc.append([round(fp / n_neg, 4), round(tp / n_pos, 4), round(float(t), 3)])
    del order
    return {"pr": pr, "roc": roc}


def wilson(successes: float, total: float, confidence: float = 0.95) -> tuple[float, float]:
    if total <= 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


@dataclass(frozen=True)
class LabelEstimate:
    labels: int  # labels kept by the cut
    precision: float | None
    precision_low: float | None
    precision_high: float | None
    recall: float | None
    f1: float | None


def estimate(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray, cut: np.ndarray
) -> LabelEstimate:
    """Precision (= acceptance of the kept part), recall and F1 from weighted labels.

    `cut` is each label's own threshold (per-relation thresholds differ). The
    interval is Wilson's at the Kish effective sample size of the kept labels.
    """
    kept = scores >= cut
    w_kept = weights[kept]
    n_kept = int(kept.sum())
    positives_total = float((weights * labels).sum())
    if n_kept == 0:
        return LabelEstimate(0, None, None, None, 0.0 if positives_total else None, None)
    true_kept = float((w_kept * labels[kept]).sum())
    precision = true_kept / float(w_kept.sum())
    effective = float(w_kept.sum() ** 2 / (w_kept**2).sum())
    low, high = wilson(precision * effective, effective)
    recall = true_kept / positives_total if positives_total else None
    f1 = (
        2 * precision * recall / (precision + recall)
        if recall is not None and precision + recall
        else None
    )
    return LabelEstimate(n_kept, precision, low, high, recall, f1)


def threshold_for_precision(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray, target: float, min_kept: int = 5
) -> float | None:
    """The lowest grid threshold whose kept labels (at least `min_kept`, so one lucky
    label cannot set the cut) reach the target precision; None when none does."""
    if not len(labels):
        return None
    order = np.argsort(-scores, kind="stable")
    s, y, w = scores[order], labels[order], weights[order]
    precision = np.cumsum(w * y) / np.cumsum(w)
    grid = np.arange(HISTOGRAM_BINS + 1) / HISTOGRAM_BINS
    # Labels kept at each grid threshold: the count of scores >= g.
    kept = len(s) - np.searchsorted(s[::-1], grid, side="left")
    ok = kept >= max(min_kept, 1)
    reached = np.zeros(len(grid), dtype=bool)
    reached[ok] = precision[kept[ok] - 1] >= target
    if not reached.any():
        return None
    return float(grid[np.flatnonzero(reached)[0]])
