"""Label aggregation and agreement (annotation.ml): pure Python, no database."""

import math
import random

import krippendorff
import numpy as np
import pytest

from annotation.ml.aggregation import ItemLabel, aggregate
from annotation.ml.agreement import (
    AgreementReport,
    agreement,
    annotator_agreement,
    fleiss_kappa,
    wilson_interval,
)


def _no_nan(report: AgreementReport) -> None:
    for field in ("alpha_ordinal", "alpha_binary", "fleiss_kappa", "pairwise"):
        value = getattr(report, field)
        assert value is None or math.isfinite(value), field


# --- majority vote ---------------------------------------------------------------------


def test_majority_counts_and_confidence():
    labels = aggregate([(1, 10, 2), (1, 11, 1), (1, 12, -1), (2, 10, -2), (2, 11, -1)])
    assert (labels[1].item_id, labels[1].votes, labels[1].accepted_votes) == (1, 3, 2)
    assert labels[1].majority is True
    assert labels[1].majority_confidence == pytest.approx(2 / 3)
    assert (labels[2].votes, labels[2].accepted_votes) == (2, 0)
    assert labels[2].majority is False and labels[2].majority_confidence == 1.0


def test_tie_gives_no_majority():
    labels = aggregate([(1, 10, 2), (1, 11, -2), (2, 10, 1), (2, 11, 1)])
    assert labels[1].majority is None
    assert labels[1].majority_confidence == 0.5


def test_cant_judge_is_not_a_vote():
    labels = aggregate([(1, 10, 2), (1, 11, -9), (1, 12, -9), (2, 10, -9)])
    # Item 1: a single opinion, so 1/1 accepted, not 1/3.
    assert (labels[1].votes, labels[1].accepted_votes, labels[1].majority) == (1, 1, True)
    assert labels[1].majority_confidence == 1.0
    # Item 2 only has "can't judge": no label at all.
    assert labels[2] == ItemLabel(2, 0, 0, None, 0.0, None, 0.0)


def test_rejudging_keeps_the_last_judgment():
    labels = aggregate([(1, 10, 2), (1, 11, 2), (1, 10, -1)])
    assert (labels[1].votes, labels[1].accepted_votes, labels[1].majority) == (2, 1, None)
    # A later "can't judge" withdraws the earlier opinion.
    labels = aggregate([(1, 10, 2), (1, 11, 2), (1, 10, -9)])
    assert (labels[1].votes, labels[1].accepted_votes) == (1, 1)


def test_rejects_values_off_the_scale():
    with pytest.raises(ValueError):
        aggregate([(1, 10, 3)])
    with pytest.raises(ValueError):
        aggregate([(1, 10)])


def test_empty_input():
    assert aggregate([]) == {}


# --- Dawid-Skene -----------------------------------------------------------------------

RELIABLE = (1, 2, 3)
SPAMMERS = (8, 9)


def _spam_example() -> tuple[list[tuple[int, int, int]], dict[int, bool]]:
    """3 reliable annotators always right, 2 spammers who always say "acceptable".

    Items 0-19 are judged by all five (truth alternates), so majority is right there
    (5-0 or 3-2) and DS learns the spammers' "yes" carries no information. Items 20-22 are
    unacceptable and judged by one reliable annotator and both spammers: majority says
    acceptable 2-1 (wrong); DS follows the reliable annotator (right).
    """
    judgments, truth = [], {}
    for item in range(20):
        truth[item] = item % 2 == 0
        for a in RELIABLE:
            judgments.append((item, a, 2 if truth[item] else -1))
        for s in SPAMMERS:
            judgments.append((item, s, 1))
    for item, a in zip((20, 21, 22), RELIABLE, strict=True):
        truth[item] = False
        judgments.append((item, a, -2))
        for s in SPAMMERS:
            judgments.append((item, s, 2))
    return judgments, truth


def test_dawid_skene_outvotes_spammers():
    judgments, truth = _spam_example()
    labels = aggregate(judgments)
    assert all(labels[i].ds is truth[i] for i in truth)
    for item in (20, 21, 22):
        assert labels[item].majority is True  # majority is fooled
        assert labels[item].ds is False
        assert labels[item].ds_confidence > 0.9


def test_dawid_skene_is_deterministic_under_reordering():
    judgments, _ = _spam_example()
    shuffled = judgments[:]
    random.Random(7).shuffle(shuffled)
    assert aggregate(judgments) == aggregate(shuffled)


def test_dawid_skene_single_annotator_falls_back_to_majority():
    labels = aggregate([(1, 10, 2), (2, 10, -1), (3, 10, 1), (4, 10, -9)])
    for label in labels.values():
        assert (label.ds, label.ds_confidence) == (label.majority, label.majority_confidence)
    assert [labels[i].ds for i in (1, 2, 3, 4)] == [True, False, True, None]


def test_dawid_skene_single_votes_fall_back_to_majority():
    # Every item has one vote: crowd-kit would return the class prior (acceptable, 2/3)
    # for all three items, contradicting the only vote on item 2.
    labels = aggregate([(1, 10, 2), (2, 11, -1), (3, 12, 1)])
    assert [labels[i].ds for i in (1, 2, 3)] == [True, False, True]
    assert all(label.ds_confidence == 1.0 for label in labels.values())


def test_dawid_skene_falls_back_when_crowdkit_fails(monkeypatch):
    from crowdkit.aggregation import DawidSkene

    def boom(self, data):
        raise RuntimeError("boom")

    monkeypatch.setattr(DawidSkene, "fit_predict_proba", boom)
    judgments, _ = _spam_example()
    labels = aggregate(judgments)
    assert labels[20].ds is True  # the (wrong) majority, not an exception
    assert all(label.ds == label.majority for label in labels.values())


def test_dawid_skene_unanimous_data_has_one_class():
    labels = aggregate([(1, 10, 2), (1, 11, 1), (2, 10, 1), (2, 11, 2)])
    assert labels[1].ds is True and labels[1].ds_confidence == pytest.approx(1.0)


def test_dawid_skene_tie_is_none():
    # Two annotators, two items, full disagreement, symmetric: no reason to prefer anyone.
    labels = aggregate([(1, 10, 2), (1, 11, -2), (2, 10, -2), (2, 11, 2)])
    assert labels[1].ds is None and labels[1].ds_confidence == 0.5


# --- agreement -------------------------------------------------------------------------

# Hand-computed binary example: 4 items x 3 raters (Y = acceptable, N = not).
#   item 1: Y Y Y   P_1 = (9 + 0 - 3) / (3 * 2) = 1
#   item 2: Y Y N   P_2 = (4 + 1 - 3) / 6     = 1/3
#   item 3: Y N N   P_3 = 1/3
#   item 4: N N N   P_4 = 1
# P = (1 + 1/3 + 1/3 + 1) / 4 = 2/3; p_Y = p_N = 6/12, Pe = 1/2
# Fleiss' kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3.
# Krippendorff (nominal): coincidences o_YY = 3 + 1 = 4, o_NN = 4, o_YN = o_NY = 1 + 1 = 2,
# n = 12, n_Y = n_N = 6: alpha = 1 - (n - 1) * (o_YN + o_NY) / (2 n_Y n_N)
#                               = 1 - 11 * 4 / 72 = 7/18.
# Pairwise: agreeing pairs 3 + 1 + 1 + 3 = 8 of 4 * 3 = 12 -> 2/3.
TEXTBOOK = [
    (1, 1, 2), (1, 2, 1), (1, 3, 2),
    (2, 1, 1), (2, 2, 2), (2, 3, -1),
    (3, 1, 2), (3, 2, -2), (3, 3, -1),
    (4, 1, -1), (4, 2, -2), (4, 3, -1),
]  # fmt: skip


def test_textbook_binary_example():
    report = agreement(TEXTBOOK)
    assert (report.items, report.judgments) == (4, 12)
    assert report.fleiss_kappa == pytest.approx(1 / 3)
    assert report.alpha_binary == pytest.approx(7 / 18)
    assert report.pairwise == pytest.approx(2 / 3)


def test_fleiss_kappa_with_variable_raters():
    # TEXTBOOK plus item 5 rated Y Y by two raters: P_5 = (4 - 2) / 2 = 1.
    # P = (8/3 + 1) / 5 = 11/15; p_Y = 8/14, p_N = 6/14, Pe = (64 + 36) / 196 = 25/49
    # kappa = (11/15 - 25/49) / (24/49) = (164/735) * (49/24) = 41/90.
    report = agreement([*TEXTBOOK, (5, 1, 1), (5, 2, 2)])
    assert report.fleiss_kappa == pytest.approx(41 / 90)
    assert fleiss_kappa(np.array([[0, 3], [1, 2], [2, 1], [3, 0], [0, 2]])) == pytest.approx(
        41 / 90
    )


def test_alpha_matches_krippendorff_on_a_dense_matrix():
    # value_counts (items x categories) must give what the annotators x items matrix gives.
    rng = np.random.default_rng(3)
    judgments = [
        (item, annotator, int(rng.choice([-2, -1, 1, 2, -9])))
        for item in range(30)
        for annotator in range(5)
        if rng.random() < 0.7
    ]
    dense = np.full((5, 30), np.nan)
    for item, annotator, value in judgments:
        if value != -9:
            dense[annotator, item] = value
    report = agreement(judgments)
    assert report.alpha_ordinal == pytest.approx(
        krippendorff.alpha(dense, value_domain=[-2, -1, 1, 2], level_of_measurement="ordinal")
    )
    assert report.alpha_binary == pytest.approx(
        krippendorff.alpha(
            np.where(np.isnan(dense), np.nan, dense > 0), level_of_measurement="nominal"
        )
    )


def test_perfect_agreement():
    judgments = [(i, a, v) for i, v in enumerate([2, -1, 1, -2, 2]) for a in (1, 2, 3)]
    report = agreement(judgments)
    assert report.alpha_ordinal == pytest.approx(1.0)
    assert report.alpha_binary == pytest.approx(1.0)
    assert report.fleiss_kappa == pytest.approx(1.0)
    assert report.pairwise == 1.0


def test_cant_judge_does_not_change_agreement():
    noisy = [*TEXTBOOK, (1, 4, -9), (2, 4, -9), (9, 1, -9), (9, 2, -9)]
    assert agreement(noisy) == agreement(TEXTBOOK)


def test_no_variation_is_undefined_not_nan():
    report = agreement([(i, a, 2) for i in range(5) for a in (1, 2)])
    assert report.alpha_ordinal is None
    assert report.alpha_binary is None
    assert report.fleiss_kappa is None
    assert report.pairwise == 1.0


def test_ordinal_variation_without_binary_variation():
    report = agreement([(1, 1, 1), (1, 2, 2), (2, 1, 2), (2, 2, 2)])
    assert report.alpha_ordinal is not None and math.isfinite(report.alpha_ordinal)
    assert report.alpha_binary is None and report.fleiss_kappa is None
    _no_nan(report)


@pytest.mark.parametrize(
    "judgments",
    [
        [],
        [(1, 1, -9), (1, 2, -9)],
        [(1, 1, 2), (2, 1, -1)],  # no item with two ratings
        [(1, 1, 2), (1, 2, -1), (2, 1, 2)],  # a single pairable item
    ],
)
def test_too_little_data_is_undefined(judgments):
    report = agreement(judgments)
    assert report.alpha_ordinal is None
    assert report.alpha_binary is None
    assert report.fleiss_kappa is None
    _no_nan(report)


def test_pairwise_needs_only_one_pair():
    report = agreement([(1, 1, 2), (1, 2, -1), (2, 1, 2)])
    assert (report.items, report.judgments, report.pairwise) == (1, 2, 0.0)
    assert agreement([]).pairwise is None


def test_annotator_agreement():
    # Annotator 3 in TEXTBOOK: item 1 Y vs Y Y (2 agree), item 2 N vs Y Y (0),
    # item 3 N vs Y N (1), item 4 N vs N N (2) -> 5/8. Annotator 1: 2 + 1 + 0 + 2 -> 5/8;
    # annotator 2: 2 + 1 + 1 + 2 -> 6/8.
    extra = [(7, 5, 2), (8, 6, -9), (1, 6, -9)]  # 5 shares no item, 6 only "can't judge"
    result = annotator_agreement([*TEXTBOOK, *extra])
    assert result == {
        1: pytest.approx(5 / 8),
        2: pytest.approx(6 / 8),
        3: pytest.approx(5 / 8),
        5: None,
        6: None,
    }
    assert annotator_agreement([]) == {}


# --- Wilson interval -------------------------------------------------------------------


def test_wilson_interval_known_value():
    rate, low, high = wilson_interval(8, 10)
    assert rate == 0.8
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (None, None, None)
    assert wilson_interval(0, 10)[:2] == (0.0, 0.0)
    assert wilson_interval(10, 10)[2] == 1.0
    _, low95, high95 = wilson_interval(8, 10)
    _, low99, high99 = wilson_interval(8, 10, confidence=0.99)
    assert low99 < low95 and high99 > high95
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)
