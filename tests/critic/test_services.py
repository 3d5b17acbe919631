"""The critic's services on a real (small) corpus with the real packaged encoder."""

import io

import numpy as np
import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from annotation.models import Campaign, Item
from annotation.services.campaigns import campaign_create
from corpora.models import Triple
from critic import selectors
from critic.errors import CriticError
from critic.labels import corpus_labels
from critic.models import CorpusScoring, CriticVersion
from critic.services.config import artifact_root, critic_config_get
from critic.services.presets import preset_save
from critic.services.scoring import corpus_rescore
from critic.services.training import (
    TRAIN_JOB,
    critic_activate,
    critic_retrain_if_due,
    critic_train,
    critic_train_job_run,
)
from jobs.models import Job

pytestmark = pytest.mark.django_db


def _valid_of(triple_id: int) -> int:
    return orjson.loads(Triple.objects.get(pk=triple_id).source_fields)["valid"]


def test_trains_from_imported_skd_labels_and_activates_the_first_version(labelled_corpus):
    labels = corpus_labels(corpus_id=labelled_corpus.pk)
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    assert version.number == 1 and version.is_active
    assert version.label_count == len(labels.learning)
    assert version.positive_count == int(labels.learning.labels.sum())
    # Out-of-fold predictions on the demo corpus (written with clearly good and bad
    # triples) separate the classes well above chance.
    assert version.metrics["roc_auc"] > 0.6
    assert set(version.recall_thresholds) == {"rec_50", "rec_60", "rec_70", "rec_80", "rec_90"}
    assert version.recall_thresholds["rec_90"] <= version.recall_thresholds["rec_50"]
    assert "First version" in version.decision


def test_training_needs_both_classes(db):
    from tests.annotation.conftest import make_corpus

    corpus = make_corpus(30, name="unlabelled")
    with pytest.raises(CriticError, match="needs at least 20"):
        critic_train(corpus=corpus)


def test_rescore_writes_every_score_and_histogram_counts(labelled_corpus):
    critic_train(corpus=labelled_corpus, queue_rescore=False)
    scoring = corpus_rescore(corpus=labelled_corpus)
    total = Triple.objects.filter(corpus=labelled_corpus).count()
    assert scoring.scored_count == total
    assert (
        not Triple.objects.filter(corpus=labelled_corpus)
        .with_score(labelled_corpus)
        .filter(score__isnull=True)
        .exists()
    )
    scores = np.array(
        Triple.objects.filter(corpus=labelled_corpus)
        .with_score(labelled_corpus)
        .values_list("score", flat=True)
    )
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert sum(sum(counts) for counts in scoring.histogram.values()) == total
    # Rescoring again is idempotent.
    again = corpus_rescore(corpus=labelled_corpus)
    assert again.histogram == scoring.histogram


def test_triples_near_the_line_are_the_closest_on_each_side(labelled_corpus):
    critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    rows = Triple.objects.filter(corpus=labelled_corpus).with_score(labelled_corpus)
    score_of = {
        (head, relation, tail): score
        for head, relation, tail, score in rows.values_list(
            "head__text", "relation__name", "tail", "score"
        )
    }
    scores = sorted(score_of.values())
    threshold = float(np.median(scores))
    above, below = selectors.triples_near_threshold(
        corpus=labelled_corpus, threshold=threshold, count=3
    )
    assert [t.score for t in above] == [s for s in scores if s >= threshold][:3]
    assert [t.score for t in below] == [s for s in reversed(scores) if s < threshold][:3]
    for near in above + below:
        assert score_of[(near.head, near.relation, near.tail)] == near.score


def test_threshold_report_matches_a_direct_computation(labelled_corpus):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    threshold = 0.5
    report = selectors.threshold_report(
        corpus=labelled_corpus, version=version, threshold=threshold
    )
    triples = Triple.objects.filter(corpus=labelled_corpus).with_score(labelled_corpus)
    assert report.total == triples.count()
    assert report.kept == triples.filter(score__gte=threshold).count()
    for row in report.relations:
        assert (
            row.kept
            == triples.filter(relation__name=row.relation, score__gte=row.threshold).count()
        )
    # Precision and recall against the version's out-of-fold scores, computed by hand.
    saved = np.load(artifact_root() / version.labels_file)
    y, s = saved["labels"], saved["scores"]
    kept = s >= threshold
    assert report.basis == "out-of-fold"
    assert report.labels == len(y)
    assert report.precision == pytest.approx(y[kept].mean())
    assert report.recall == pytest.approx(y[kept].sum() / y.sum())
    assert report.precision_low <= report.precision <= report.precision_high


def test_target_precision_threshold_reaches_the_target(labelled_corpus):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    threshold, by_relation = selectors.threshold_for_precision(
        version=version, target=0.85, per_relation=True, min_labels=20
    )
    assert threshold is not None
    saved = np.load(artifact_root() / version.labels_file)
    kept = saved["scores"] >= threshold
    assert saved["labels"][kept].mean() >= 0.85
    assert all(0.0 <= t <= 1.0 for t in by_relation.values())


def test_one_active_version_per_corpus(labelled_corpus):
    first = critic_train(corpus=labelled_corpus, queue_rescore=False)
    second = critic_train(corpus=labelled_corpus, queue_rescore=False)
    assert second.number == 2
    critic_activate(version=second, queue_rescore=False)
    first.refresh_from_db()
    assert not first.is_active
    assert CriticVersion.objects.filter(corpus=labelled_corpus, is_active=True).count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        CriticVersion.objects.filter(pk=first.pk).update(is_active=True)


def _audit_campaign(corpus, size=60) -> Campaign:
    """An audit campaign whose items carry the SKD labels as their aggregated labels."""
    campaign = campaign_create(
        corpus=corpus, name="audit", size=size, purpose=Campaign.Purpose.AUDIT, gold_share=0.0
    )
    for item in Item.objects.filter(campaign=campaign, is_gold=False):
        valid = _valid_of(item.triple_id)
        if valid != -9:
            Item.objects.filter(pk=item.pk).update(majority=valid > 0, ds_label=valid > 0)
    return campaign


def test_a_version_worse_on_the_audit_sample_is_not_activated(labelled_corpus):
    _audit_campaign(labelled_corpus)
    good = critic_train(corpus=labelled_corpus, queue_rescore=False)
    assert good.is_active and good.audit_label_count > 20
    # Labels to learn from turn wrong (every one flipped): the next version learns the
    # opposite and is worse on the audit labels, which it never trained on.
    imported = Campaign.objects.get(corpus=labelled_corpus, purpose=Campaign.Purpose.LEARNING)
    for item in Item.objects.filter(campaign=imported, majority__isnull=False):
        Item.objects.filter(pk=item.pk).update(
            majority=not item.majority, ds_label=not item.majority
        )
    bad = critic_train(corpus=labelled_corpus, queue_rescore=False)
    assert not bad.is_active
    assert "Not activated" in bad.decision and "audit labels" in bad.decision
    good.refresh_from_db()
    assert good.is_active


def test_audit_labels_are_never_trained_on_and_drive_the_estimates(labelled_corpus):
    _audit_campaign(labelled_corpus)
    labels = corpus_labels(corpus_id=labelled_corpus.pk)
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    assert version.label_count == len(labels.learning)
    assert version.audit_label_count == len(labels.auditing)
    report = selectors.threshold_report(corpus=labelled_corpus, version=version, threshold=0.5)
    assert report.basis == "audit"
    assert report.labels == len(labels.auditing)


def test_retraining_is_due_after_n_new_labels_and_debounced(labelled_corpus):
    config = critic_config_get(corpus=labelled_corpus)
    first = critic_retrain_if_due(corpus=labelled_corpus)
    assert first is not None and first.kind == TRAIN_JOB
    # A second call while it waits joins nothing new.
    assert critic_retrain_if_due(corpus=labelled_corpus) is None
    critic_train_job_run(job_id=first.pk)
    assert CriticVersion.objects.filter(corpus=labelled_corpus).count() == 1
    # No new labels: nothing to do.
    assert critic_retrain_if_due(corpus=labelled_corpus) is None
    config.retrain_every = 10
    config.save()
    _audit_campaign(labelled_corpus, size=10)  # audit labels do not count
    assert critic_retrain_if_due(corpus=labelled_corpus) is None
    assert Job.objects.filter(kind=TRAIN_JOB).count() == 1


def test_preset_export_keeps_what_the_dashboard_counts_and_writes_a_card(labelled_corpus, tmp_path):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    preset = preset_save(
        corpus=labelled_corpus,
        name="p",
        version=version,
        threshold=0.4,
        relation_thresholds={"xNeed": 0.7},
    )
    out = tmp_path / "kept.jsonl"
    stdout = io.StringIO()
    call_command(
        "export_corpus",
        "demo",
        "--preset",
        "p",
        "--format",
        "jsonl",
        "--out",
        str(out),
        stdout=stdout,
    )
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    triples = Triple.objects.filter(corpus=labelled_corpus).with_score(labelled_corpus)
    expected = triples.filter(score__gte=0.4).exclude(relation__name="xNeed").count()
    expected += triples.filter(relation__name="xNeed", score__gte=0.7).count()
    assert len(lines) == expected == preset.estimates["kept"]
    for line in lines:
        assert line["score"] >= (0.7 if line["relation"] == "xNeed" else 0.4)
        assert line["p_valid_model"] == pytest.approx(line["score"])
        for name, t in version.recall_thresholds.items():
            assert line[name] is (line["score"] >= t)
        assert "valid" in line  # the release's own fields stay
    card = (tmp_path / "kept.card.md").read_text()
    assert "v1" in card and "xNeed" in card and "estimated precision" in card
    assert "imported from demo_corpus.jsonl" in card  # where the corpus came from
    data = orjson.loads((tmp_path / "kept.card.json").read_bytes())
    assert data["rows_exported"] == len(lines)
    assert data["critic"]["labels"] == version.label_count


def test_a_preset_of_another_version_refuses_to_export(labelled_corpus, tmp_path):
    first = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    preset_save(corpus=labelled_corpus, name="old", version=first, threshold=0.5)
    second = critic_train(corpus=labelled_corpus, queue_rescore=False)
    critic_activate(version=second, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    assert CorpusScoring.objects.get(corpus=labelled_corpus).version == second
    with pytest.raises(CommandError, match="scores of v1, but the corpus holds scores of v2"):
        call_command("export_corpus", "demo", "--preset", "old", "--out", str(tmp_path / "x"))
