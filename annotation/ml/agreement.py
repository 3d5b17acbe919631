"""Inter-annotator agreement: Krippendorff's alpha, Fleiss' kappa, pairwise agreement.

Input is the same ``(item_id, annotator_id, value)`` tuples as :mod:`.aggregation`; -9
("can't judge") is dropped first and the binary label is ``value > 0``. Every statistic
is computed from per-item category counts (items x categories), never from a dense
annotators x items matrix, so 100k items with hundreds of annotators stay cheap.
Undefined statistics are ``None``, never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

import krippendorff
import numpy as np

from .aggregation import SCALE, Judgment, judgments_array, opinions


@dataclass(frozen=True)
class AgreementReport:
    items: int
    """Items with at least two opinion (non -9) judgments: the only ones agreement can use."""
    judgments: int
    """Opinion judgments on those items."""
    alpha_ordinal: float | None
    """Krippendorff's alpha, ordinal over -2 < -1 < 1 < 2."""
    alpha_binary: float | None
    """Krippendorff's alpha, nominal over the binary label."""
    fleiss_kappa: float | None
    """Fleiss' kappa over the binary label, variable number of raters per item."""
    pairwise: float | None
    """Share of same-item judgment pairs that agree on the binary label."""


def agreement(judgments: Iterable[Judgment]) -> AgreementReport:
    valid = opinions(judgments_array(judgments))
    _, item_pos = np.unique(valid[:, 0], return_inverse=True)
    n_items = int(item_pos.max()) + 1 if len(valid) else 0

    # items x 4 counts over the scale, in ordinal order.
    scale = np.asarray(SCALE)
    counts = np.zeros((n_items, len(scale)), dtype=np.int64)
    np.add.at(counts, (item_pos, np.searchsorted(scale, valid[:, 2])), 1)
    counts = counts[counts.sum(axis=1) >= 2]
    # Binary columns: [not acceptable, acceptable].
    binary = np.stack([counts[:, :2].sum(axis=1), counts[:, 2:].sum(axis=1)], axis=1)

    enough = len(counts) >= 2
    return AgreementReport(
        items=len(counts),
        judgments=int(counts.sum()),
        alpha_ordinal=_alpha(counts, scale, "ordinal") if enough else None,
        alpha_binary=_alpha(binary, np.array([0, 1]), "nominal") if enough else None,
        fleiss_kappa=fleiss_kappa(binary) if enough else None,
        pairwise=_pairwise(binary),
    )


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _alpha(value_counts: np.ndarray, domain: np.ndarray, level: str) -> float | None:
    # Without variation (a single category used across the pairable items) the expected
    # disagreement is 0 and alpha is 0/0; krippendorff would return NaN with a warning.
    if np.count_nonzero(value_counts.sum(axis=0)) < 2:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        value = krippendorff.alpha(
            value_counts=value_counts, value_domain=domain, level_of_measurement=level
        )
    return _finite(value)


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa from an items x categories count matrix, raters per item may vary.

    Uses the items with at least two ratings: P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1)),
    P = mean P_i, p_j = category share over those items, Pe = sum_j p_j^2,
    kappa = (P - Pe) / (1 - Pe). ``None`` with fewer than two such items or when Pe = 1.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = counts.sum(axis=1)
    counts, n = counts[n >= 2], n[n >= 2]
    if len(counts) < 2:
        return None
    p_i = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_i.mean()
    p_j = counts.sum(axis=0) / n.sum()
    p_e = float((p_j**2).sum())
    if math.isclose(p_e, 1.0):
        return None
    return _finite((p_bar - p_e) / (1.0 - p_e))


def _pairwise(binary: np.ndarray) -> float | None:
    """Agreeing pairs / all pairs, pooled over items; defined as soon as one pair exists."""
    n = binary.sum(axis=1)
    pairs = (n * (n - 1)).sum()
    if pairs == 0:
        return None
    return float((binary * (binary - 1)).sum() / pairs)


def annotator_agreement(judgments: Iterable[Judgment]) -> dict[int, float | None]:
    """Per annotator: the share of (their judgment, another annotator's judgment on the same
    item) pairs that agree on the binary label.

    Every annotator in ``judgments`` gets an entry; ``None`` when they share no item with
    anyone (only -9 judgments included).
    """
    arr = judgments_array(judgments)
    annotators = np.unique(arr[:, 1])
    valid = opinions(arr)
    if not len(valid):
        return dict.fromkeys(annotators.tolist())
    _, item_pos = np.unique(valid[:, 0], return_inverse=True)
    label = (valid[:, 2] > 0).astype(np.int64)
    n_items = int(item_pos.max()) + 1
    per_item = np.zeros((n_items, 2), dtype=np.int64)
    np.add.at(per_item, (item_pos, label), 1)
    # Each judgment pairs with the n_i - 1 others on its item; n_{i,label} - 1 of them agree.
    others = per_item.sum(axis=1)[item_pos] - 1
    agreeing = per_item[item_pos, label] - 1
    who = np.searchsorted(annotators, valid[:, 1])
    total = np.bincount(who, weights=others, minlength=len(annotators))
    agree = np.bincount(who, weights=agreeing, minlength=len(annotators))
    return {
        a: (ag / t if t > 0 else None)
        for a, ag, t in zip(annotators.tolist(), agree.tolist(), total.tolist(), strict=True)
    }


def wilson_interval(
    successes: int, total: int, confidence: float = 0.95
) -> tuple[float | None, float | None, float | None]:
    """``(rate, low, high)``: the observed rate and its Wilson score interval.

    ``(None, None, None)`` when ``total`` is 0. z is the exact normal quantile
    (``statistics.NormalDist``, same value as ``scipy.stats.norm.ppf``: 1.959964 at 95%).
    """
    if total < 0 or not 0 <= successes <= max(total, 0):
        raise ValueError("need 0 <= successes <= total")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if total == 0:
        return None, None, None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / total
    z2n = z * z / total
    center = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / total + z2n / (4 * total))
    # The bounds are exactly 0 and 1 at the extremes; don't let rounding say 2.8e-17.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == total else min(1.0, center + half)
    return p, low, high
