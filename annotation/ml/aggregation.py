"""Aggregate crowd judgments into one label per item: majority vote and Dawid-Skene.

Judgments are ``(item_id, annotator_id, value)`` tuples on the paper's scale:
2 (always/often), 1 (sometimes/likely), -1 (farfetched/never), -2 (invalid) and
-9 (can't judge). The binary label is ``value > 0`` ("acceptable"); -9 carries no opinion
and is dropped before anything is counted.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

Judgment = tuple[int, int, int]

CANT_JUDGE = -9
SCALE = (-2, -1, 1, 2)
"""The opinion values in their ordinal order (-9 is not on the scale)."""
VALID_VALUES = frozenset((*SCALE, CANT_JUDGE))

DS_MAX_ITER = 100
DS_TOL = 1e-5
_TIE_EPS = 1e-9


@dataclass(frozen=True)
class ItemLabel:
    """The aggregated label of one item.

    ``majority``/``ds`` are ``None`` when the item has no opinion votes, and on an exact tie.
    """

    item_id: int
    votes: int
    """Judgments other than -9."""
    accepted_votes: int
    """Judgments with value > 0."""
    majority: bool | None
    majority_confidence: float
    """Share of the votes on the winning side; 0.5 on a tie, 0.0 without votes."""
    ds: bool | None
    ds_confidence: float
    """Dawid-Skene posterior probability of ``ds`` (0.5 on a tie, 0.0 without votes)."""


def judgments_array(judgments: Iterable[Judgment]) -> np.ndarray:
    """Validate judgments into an ``(n, 3)`` int64 array, one row per (item, annotator).

    If an annotator judged the same item more than once, the last judgment wins (it is a
    re-judgment; counting both would let one person vote twice and agree with themself).
    This happens *before* -9 is dropped, so a later "can't judge" withdraws the opinion.
    """
    rows = judgments if isinstance(judgments, list | tuple) else list(judgments)
    if not len(rows):
        return np.empty((0, 3), dtype=np.int64)
    try:
        arr = np.asarray(rows, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ValueError("judgments must be (item_id, annotator_id, value) integer tuples") from exc
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError("judgments must be (item_id, annotator_id, value) integer tuples")
    bad = ~np.isin(arr[:, 2], np.fromiter(VALID_VALUES, dtype=np.int64))
    if bad.any():
        raise ValueError(f"unknown judgment value {int(arr[bad][0, 2])}")
    # Keep the last row of each (item, annotator): reverse, take first occurrences, restore order.
    _, first_in_reversed = np.unique(arr[::-1, :2], axis=0, return_index=True)
    if len(first_in_reversed) != len(arr):
        keep = np.sort(len(arr) - 1 - first_in_reversed)
        arr = arr[keep]
    return arr


def opinions(arr: np.ndarray) -> np.ndarray:
    """Rows of a :func:`judgments_array` without the -9 ("can't judge") judgments."""
    return arr[arr[:, 2] != CANT_JUDGE]


def aggregate(judgments: Iterable[Judgment]) -> dict[int, ItemLabel]:
    """One :class:`ItemLabel` per item that appears in ``judgments`` (even only with -9)."""
    arr = judgments_array(judgments)
    if not len(arr):
        return {}
    all_items = np.unique(arr[:, 0])
    valid = opinions(arr)

    # Per item counts, vectorized. ``item_pos`` indexes into ``all_items``.
    item_pos = np.searchsorted(all_items, valid[:, 0])
    accepted = valid[:, 2] > 0
    votes = np.bincount(item_pos, minlength=len(all_items))
    yes = np.bincount(item_pos, weights=accepted, minlength=len(all_items)).astype(np.int64)

    maj_label, maj_conf = _majority(votes, yes)
    ds_label, ds_conf = _dawid_skene(valid, accepted, all_items, votes)
    if ds_label is None:
        ds_label, ds_conf = maj_label, maj_conf

    # ``.tolist()`` converts to Python scalars once instead of item by item.
    return {
        item: ItemLabel(
            item_id=item,
            votes=n,
            accepted_votes=k,
            majority=_as_label(m),
            majority_confidence=mc,
            ds=_as_label(d),
            ds_confidence=dc,
        )
        for item, n, k, m, mc, d, dc in zip(
            all_items.tolist(),
            votes.tolist(),
            yes.tolist(),
            maj_label.tolist(),
            maj_conf.tolist(),
            ds_label.tolist(),
            ds_conf.tolist(),
            strict=True,
        )
    }


def _as_label(code: int) -> bool | None:
    """Labels travel as int8 codes: 1 True, 0 False, -1 None (tie or no votes)."""
    return None if code < 0 else bool(code)


def _majority(votes: np.ndarray, yes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote with ties left undecided.

    Done by hand rather than with crowd-kit's ``MajorityVote``, which resolves a tie with
    ``idxmax`` and so silently returns whichever label happens to be the first column.
    """
    no = votes - yes
    label = np.where(yes > no, 1, np.where(no > yes, 0, -1)).astype(np.int8)
    label[votes == 0] = -1
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(votes > 0, np.maximum(yes, no) / np.maximum(votes, 1), 0.0)
    return label, conf.astype(float)


def _dawid_skene(
    valid: np.ndarray, accepted: np.ndarray, all_items: np.ndarray, votes: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """Dawid-Skene over the binary label with crowd-kit; ``(None, None)`` means "use majority".

    DS cannot learn anything when there is a single annotator (their confusion matrix is
    fitted to their own answers, so the posterior is their answer with confidence ~1) or when
    no item has two votes (crowd-kit then returns the class prior for *every* item, even
    contradicting the only vote). In those cases, and if crowd-kit fails, the caller falls
    back to the majority result.
    """
    if not len(valid) or len(np.unique(valid[:, 1])) < 2 or not (votes >= 2).any():
        return None, None
    # Imported here, not at the top: pandas would add ~90 MB to every worker process,
    # including those that only import corpora.
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    # Sorted input makes the EM deterministic: crowd-kit's groupbys use sort=False, so the
    # row order otherwise leaks into column order and floating-point summation order.
    order = np.lexsort((valid[:, 1], valid[:, 0]))
    data = pd.DataFrame(
        {
            "task": valid[order, 0],
            "worker": valid[order, 1],
            "label": accepted[order].astype(np.int64),
        }
    )
    try:
        with warnings.catch_warnings():
            # crowd-kit 1.4.2 uses inplace=/copy= keywords pandas 3 deprecates (Pandas4Warning).
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            probas = DawidSkene(n_iter=DS_MAX_ITER, tol=DS_TOL).fit_predict_proba(data)
    except Exception:  # any crowd-kit/pandas failure degrades to majority
        return None, None
    # With only one label in the data crowd-kit returns just that column.
    probas = probas.reindex(index=all_items, columns=[0, 1], fill_value=0.0)
    p_yes = probas[1].to_numpy(dtype=float)
    p_no = probas[0].to_numpy(dtype=float)
    total = p_yes + p_no
    if not np.isfinite(p_yes).all() or not np.isfinite(p_no).all():
        return None, None
    with np.errstate(invalid="ignore", divide="ignore"):
        p_yes = np.where(total > 0, p_yes / total, 0.0)
    has_votes = votes > 0
    label = np.where(p_yes > 0.5, 1, 0).astype(np.int8)
    conf = np.maximum(p_yes, 1.0 - p_yes)
    tie = np.abs(p_yes - 0.5) < _TIE_EPS
    label[tie] = -1
    conf[tie] = 0.5
    label[~has_votes] = -1
    conf[~has_votes] = 0.0
    return label, conf
