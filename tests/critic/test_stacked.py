"""The stacked tier: both tiers on the same labels, a stacker on their scores, chosen only
where it beats each tier alone on labels both scored out of sample."""

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from corpora.models import Triple
from critic import charts, selectors
from critic.ml.stacking import stack_tiers
from critic.models import CriticVersion
from critic.services.loading import critic_load
from critic.services.scoring import corpus_rescore
from tests.critic.tiny_cross import tiny_cross_encoder_build


def _noisy(labels, noise, rng):
    """P(acceptable) from the label plus Gaussian noise (a tier that errs on its own)."""
    return 1 / (1 + np.exp(-(2.0 * (labels - 0.5) + rng.normal(0, noise, len(labels)))))


def test_two_tiers_that_err_apart_are_stacked():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 600)
    fast, cross = _noisy(labels, 1.5, rng), _noisy(labels, 1.5, rng)
    result = stack_tiers(fast, cross, labels)
    assert result.chosen == "stacked" and result.stacker is not None
    assert result.roc_auc["stacked"] > max(result.roc_auc["fast"], result.roc_auc["cross-encoder"])
    # Both tiers count: each gets a positive weight.
    assert result.stacker.fast_weight > 0 and result.stacker.cross_weight > 0
    assert result.heldout_scores.shape == (600,)


def test_a_stack_that_adds_nothing_is_not_used():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    good = _noisy(labels, 1.0, rng)
    # The same scores twice: the stack cannot beat a tier, so the better tier is used.
    result = stack_tiers(good, good, labels)
    assert result.chosen in ("fast", "cross-encoder") and result.stacker is None
    np.testing.assert_array_equal(result.heldout_scores, good)


def test_too_few_labels_to_stack_use_the_better_tier():
    labels = np.array([1, 0, 1, 0, 1, 0])
    fast = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3])  # perfect
    cross = np.array([0.4, 0.6, 0.5, 0.5, 0.6, 0.4])
    result = stack_tiers(fast, cross, labels)
    assert result.chosen == "fast" and result.roc_auc["stacked"] is None
    with pytest.raises(ValueError, match="one fast score"):
        stack_tiers(fast, cross[:3], labels)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return tiny_cross_encoder_build(tmp_path_factory.mktemp("tiny-bert"))


@pytest.mark.one_leg
@pytest.mark.django_db
def test_stacked_tier_trains_scores_the_corpus_and_plots_each_tier(
    labelled_corpus, tiny_bert, researcher_client
):
    out = io.StringIO()
    call_command(
        "train_critic",
        *("--corpus", labelled_corpus.name, "--tier", "stacked", "--encoder", tiny_bert),
        "--no-score",
        stdout=out,
    )
    version = CriticVersion.objects.get(corpus=labelled_corpus)
    assert version.tier == "stacked" and version.is_active
    measured = version.metrics["tier_roc_auc"]
    assert set(measured) == {"fast", "cross-encoder", "stacked"}
    assert measured["fast"] is not None and measured["cross-encoder"] is not None
    chosen = version.metrics["chosen"]
    assert chosen in measured
    # The command says what the version scores with and what each way measured.
    assert f"Scores with {chosen}: ROC-AUC on the {version.metrics['tier_labels']} labels" in (
        out.getvalue()
    )
    # The version's own figure is the chosen way's, on labels it scored out of sample.
    if chosen != "fast":
        assert version.metrics["roc_auc"] == pytest.approx(measured[chosen])

    loaded = critic_load(version)
    assert loaded.chosen == chosen
    # A tier that lost is not loaded, so rescoring never runs it.
    assert (loaded.fast is None) == (chosen == "cross-encoder")
    assert (loaded.cross is None) == (chosen == "fast")

    scoring = corpus_rescore(corpus=labelled_corpus)
    triples = Triple.objects.filter(corpus=labelled_corpus).with_score(labelled_corpus)
    assert scoring.scored_count == triples.count()
    assert not triples.filter(score__isnull=True).exists()

    points = selectors.learning_curve(corpus=labelled_corpus)
    chart = charts.learning_curve(points)
    assert [line["tier"] for line in chart["tier_lines"]] == ["fast", "cross-encoder", "stacked"]
    assert chart["dots"][0]["square"] and f"scores with {chosen}" in chart["dots"][0]["title"]
    page = researcher_client.get(reverse("critic:dashboard", args=[labelled_corpus.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and 'id="tier-legend"' in html
    for tier in ("fast", "cross-encoder", "stacked"):
        assert f'data-tier="{tier}"' in html


def test_each_tier_gets_a_line_from_plain_versions_too():
    points = [
        {"version": 1, "tier": "fast", "labels": 100, "roc_auc": 0.7, "active": False},
        {"version": 2, "tier": "fast", "labels": 300, "roc_auc": 0.75, "active": False},
        {"version": 3, "tier": "cross-encoder", "labels": 300, "roc_auc": 0.8, "active": True},
    ]
    assert charts.tier_series(points) == {
        "fast": [(100, 0.7, 1), (300, 0.75, 2)],
        "cross-encoder": [(300, 0.8, 3)],
    }
    chart = charts.learning_curve(points)
    assert len(chart["tier_lines"]) == 2
    # Every figure gets a mark, so a tier measured at one label count still shows.
    assert [len(line["marks"]) for line in chart["tier_lines"]] == [2, 1]
    cross_mark = chart["tier_lines"][1]["marks"][0]
    assert cross_mark["title"] == "cross-encoder, v3: 300 labels, ROC-AUC 0.800"
    # One tier only: the version line is the tier's line; no second one is drawn.
    assert charts.learning_curve(points[:2])["tier_lines"] == []
