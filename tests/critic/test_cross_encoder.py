"""The strong tier: a cross-encoder fine-tuned with transformers' Trainer. A tiny BERT built
from a config at test time (with the packaged MiniLM's tokenizer) keeps this fast."""

import numpy as np
import pytest

from corpora.models import Triple
from critic.ml.cross import CrossEncoderScorer, train_cross_encoder
from critic.models import CriticConfig
from critic.services.config import critic_config_update
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train
from tests.critic.tiny_cross import tiny_cross_encoder_build


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return tiny_cross_encoder_build(tmp_path_factory.mktemp("tiny-bert"))


def _pairs(n: int):
    """Learnable pairs: a tail that repeats the head's animal is acceptable."""
    animals = ["cat", "dog", "horse", "bird", "fish", "cow"]
    rng = np.random.default_rng(0)
    first, second, labels = [], [], []
    for _ in range(n):
        a, b = rng.choice(len(animals), size=2, replace=False)
        good = rng.random() < 0.5
        first.append(f"PersonX feeds the {animals[a]}. as a result, PersonX feels")
        second.append(f"happy about the {animals[a] if good else animals[b]}")
        labels.append(int(good))
    return first, second, np.array(labels)


def test_fine_tunes_saves_and_scores_held_out_pairs(tiny_bert, tmp_path):
    first, second, labels = _pairs(200)
    steps = []
    result = train_cross_encoder(
        first,
        second,
        labels,
        base_model=tiny_bert,
        output_dir=tmp_path,
        epochs=3,
        learning_rate=1e-3,
        batch_size=16,
        progress=lambda step, total: steps.append((step, total)),
    )
    assert result.steps == steps[-1][0] == steps[-1][1]
    assert (result.model_dir / "config.json").is_file()
    assert len(result.heldout_index) == 40
    assert set(labels[result.heldout_index]) == {0, 1}
    assert ((result.heldout_scores >= 0) & (result.heldout_scores <= 1)).all()
    assert set(result.metrics) >= {"roc_auc", "average_precision", "brier"}

    # The saved model scores exactly as the trained one did, in the order given.
    scorer = CrossEncoderScorer(result.model_dir, batch_size=7)
    again = scorer.score(
        [first[i] for i in result.heldout_index], [second[i] for i in result.heldout_index]
    )
    np.testing.assert_allclose(again, result.heldout_scores, atol=1e-5)
    assert scorer.score([], []).shape == (0,)


def test_refuses_one_class_and_mismatched_lengths(tiny_bert, tmp_path):
    with pytest.raises(ValueError, match="both acceptable and unacceptable"):
        train_cross_encoder(
            ["a"] * 4, ["b"] * 4, [1] * 4, base_model=tiny_bert, output_dir=tmp_path
        )
    with pytest.raises(ValueError, match="same length"):
        train_cross_encoder(
            ["a"] * 4, ["b"] * 3, [1, 0, 1, 0], base_model=tiny_bert, output_dir=tmp_path
        )


@pytest.mark.django_db
def test_cross_encoder_tier_trains_a_version_and_rescores_the_corpus(labelled_corpus, tiny_bert):
    critic_config_update(
        corpus=labelled_corpus, tier=CriticConfig.Tier.CROSS_ENCODER, encoder=tiny_bert
    )
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    assert version.tier == CriticConfig.Tier.CROSS_ENCODER and version.is_active
    assert "roc_auc" in version.metrics
    scoring = corpus_rescore(corpus=labelled_corpus)
    assert (
        scoring.scored_count
        == Triple.objects.filter(corpus=labelled_corpus).with_score(labelled_corpus).count()
    )
    assert (
        not Triple.objects.filter(corpus=labelled_corpus)
        .with_score(labelled_corpus)
        .filter(score__isnull=True)
        .exists()
    )
    # The dashboard's estimates rest on the held-out share only (no NaN leaks in).
    from critic import selectors

    report = selectors.threshold_report(corpus=labelled_corpus, version=version, threshold=0.5)
    assert report.labels == len(selectors.evaluation_labels(version).labels) > 0
    assert report.total == scoring.scored_count
