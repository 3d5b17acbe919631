"""Labels arriving from annotators turn into new critic versions with nobody pressing a
button; the embedding cache is filled by jobs that split the corpus; the CLI."""

import io

import numpy as np
import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Campaign
from annotation.services.campaigns import campaign_create
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from annotation.services.membership import member_add
from corpora.models import ScoreSet, Triple, TripleScore
from critic.labels import corpus_labels
from critic.models import CriticVersion
from critic.services import embedding
from critic.services.config import critic_config_get, critic_config_update
from critic.services.embedding import (
    EMBED_JOB,
    corpus_embed,
    corpus_embed_job_run,
    corpus_embed_jobs_create,
    embedding_store_get,
    encoder_get,
)
from critic.services.scoring import (
    RESCORE_JOB,
    _ScoreWriter,
    corpus_rescore,
    corpus_rescore_job_run,
)
from critic.services.training import TRAIN_JOB, critic_tick, critic_train, critic_train_job_run
from jobs.models import Job
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _judge_everything(campaign: Campaign, annotator) -> int:
    """The annotator gives each item the label the demo file has for its triple."""
    done = 0
    while assignment := assignment_next(campaign=campaign, annotator=annotator):
        fields = orjson.loads(Triple.objects.get(pk=assignment.item.triple_id).source_fields)
        value = fields.get("valid", 1)
        judgment_submit(assignment_id=assignment.pk, annotator=annotator, value=value)
        done += 1
    return done


def _run(job: Job) -> Job:
    runner = {
        TRAIN_JOB: critic_train_job_run,
        RESCORE_JOB: corpus_rescore_job_run,
        EMBED_JOB: corpus_embed_job_run,
    }
    if job.kind in runner:
        runner[job.kind](job_id=job.pk)
    else:
        from annotation.services.aggregation import campaign_aggregate_job_run

        campaign_aggregate_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    return job


def _queued(kind_prefix: str) -> list[Job]:
    return list(
        Job.objects.filter(kind__startswith=kind_prefix, status=Job.Status.QUEUED).order_by("pk")
    )


def test_new_judgments_train_and_activate_a_version_without_a_button(labelled_corpus):
    first = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    critic_config_update(corpus=labelled_corpus, retrain_every=20)
    annotator = UserFactory(role="annotator")
    campaign = campaign_create(
        corpus=labelled_corpus,
        name="more labels",
        size=40,
        judgments_per_item=1,
        gold_share=0.0,
        sampling=Campaign.Sampling.UNCERTAIN,
    )
    member_add(campaign=campaign, annotator=annotator)
    before = corpus_labels(corpus_id=labelled_corpus.pk).learning.learning_events
    assert _judge_everything(campaign, annotator) == 40

    # The beat's tick sees a campaign whose stats are stale: it aggregates it first.
    assert critic_tick()["aggregations"] == 1
    for job in _queued("annotation.aggregate"):
        _run(job)
    assert corpus_labels(corpus_id=labelled_corpus.pk).learning.learning_events > before

    # The next tick finds 40 new labels (≥ 20): a training job, one only.
    assert critic_tick()["trainings"] == 1
    assert critic_tick()["trainings"] == 0
    (train,) = _queued(TRAIN_JOB)
    _run(train)
    second = CriticVersion.objects.get(corpus=labelled_corpus, number=2)
    assert second.label_events > first.label_events
    assert second.decision
    if second.is_active:
        (rescore,) = _queued(RESCORE_JOB)
        _run(rescore)
        assert (
            not Triple.objects.filter(corpus=labelled_corpus)
            .with_score(labelled_corpus)
            .filter(score__isnull=True)
            .exists()
        )
    # Nothing new since: the tick stays quiet.
    assert critic_tick()["trainings"] == 0


def test_embedding_jobs_split_the_corpus_and_fill_the_cache_once(labelled_corpus, settings):
    embedding.EMBED_CHUNK, saved = 100, embedding.EMBED_CHUNK
    try:
        jobs = corpus_embed_jobs_create(corpus=labelled_corpus)
    finally:
        embedding.EMBED_CHUNK = saved
    total = Triple.objects.filter(corpus=labelled_corpus).count()
    assert len(jobs) == -(-total // 100)
    assert sum(job.params["triples"] for job in jobs) == total
    for job in jobs:
        assert _run(job).result["triples"] == job.params["triples"]

    config = critic_config_get(corpus=labelled_corpus)
    encoder = encoder_get(config.encoder)
    store = embedding_store_get(encoder)
    cached = len(store)
    assert cached > 0
    # A second pass encodes nothing new, and training reads from the cache.
    corpus_embed(corpus=labelled_corpus)
    assert len(embedding_store_get(encoder)) == cached
    critic_train(corpus=labelled_corpus, queue_rescore=False)
    assert len(embedding_store_get(encoder)) == cached


def test_cli_trains_and_scores(labelled_corpus):
    out = io.StringIO()
    call_command("train_critic", "--corpus", "demo", "--no-score", stdout=out, stderr=io.StringIO())
    assert "version 1" in out.getvalue().lower() or "v1" in out.getvalue()
    assert CriticVersion.objects.get(corpus=labelled_corpus).is_active
    out = io.StringIO()
    call_command("score_corpus", "demo", stdout=out, stderr=io.StringIO())
    total = Triple.objects.filter(corpus=labelled_corpus).count()
    assert f"scored {total:,} triples" in out.getvalue()
    scores = np.array(
        Triple.objects.filter(corpus=labelled_corpus)
        .with_score(labelled_corpus)
        .values_list("score", flat=True)
    )
    assert ((scores >= 0) & (scores <= 1)).all()


def test_cli_names_what_is_wrong(labelled_corpus):
    with pytest.raises(CommandError, match="nope"):
        call_command("train_critic", "--corpus", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no active critic"):
        call_command("score_corpus", "demo", stdout=io.StringIO(), stderr=io.StringIO())


def test_rescoring_outside_a_transaction_writes_every_score(transactional_db, labelled_corpus):
    """As in a worker's job: on PostgreSQL the writes run on their own connection while
    the next chunk is scored; every score lands, and a superseded version stops."""
    from django.db import connection

    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    writer = _ScoreWriter(labelled_corpus.pk, version.pk)
    assert writer.threaded == (connection.vendor == "postgresql")
    writer.abandon()
    scoring = corpus_rescore(corpus=labelled_corpus, chunk_size=50)
    rows = list(
        Triple.objects.filter(corpus=labelled_corpus)
        .with_score(labelled_corpus)
        .values_list("relation__name", "score")
    )
    assert scoring.scored_count == len(rows) and all(score is not None for _, score in rows)
    for name, counts in scoring.histogram.items():
        assert sum(counts) == sum(1 for relation, _ in rows if relation == name)

    # Another version activated meanwhile: this rescoring gives way.
    other = critic_train(corpus=labelled_corpus, queue_rescore=False)
    CriticVersion.objects.filter(pk=other.pk).update(is_active=False)
    first = Triple.objects.filter(corpus=labelled_corpus).order_by("pk").first()
    writer = _ScoreWriter(labelled_corpus.pk, other.pk)
    writer.put(np.array([first.pk]), np.array([0.123]))
    assert writer.close() is False
    in_force = Triple.objects.with_score(labelled_corpus).get(pk=first.pk)
    assert in_force.score is not None and in_force.score != 0.123
    # Nothing of the abandoned set is left: one set, the one in force.
    labelled_corpus.refresh_from_db()
    assert list(ScoreSet.objects.filter(corpus=labelled_corpus)) == [labelled_corpus.score_set]
    assert not TripleScore.objects.exclude(score_set=labelled_corpus.score_set).exists()


def test_labels_aggregated_last_win_over_imported_ones(db):
    from annotation.services.aggregation import campaign_aggregate
    from annotation.services.labels import campaign_import_labels
    from corpora.models import Corpus
    from corpora.services import corpus_import
    from tests.conftest import DEMO_CORPUS

    corpus_import(path=DEMO_CORPUS, corpus_name="demo", fmt="skd")
    corpus = Corpus.objects.get(name="demo")
    annotator = UserFactory(role="annotator")
    # The people's campaign is made first, the SKD labels are imported after it...
    campaign = campaign_create(
        corpus=corpus, name="people", size=20, judgments_per_item=1, gold_share=0.0
    )
    member_add(campaign=campaign, annotator=annotator)
    campaign_import_labels(corpus=corpus)
    imported = corpus_labels(corpus_id=corpus.pk)
    imported_label = dict(zip(imported.triple_ids.tolist(), imported.labels.tolist(), strict=True))
    # ...and then the annotator judges, disagreeing with every imported label.
    judged = []
    while assignment := assignment_next(campaign=campaign, annotator=annotator):
        triple_id = assignment.item.triple_id
        value = -2 if imported_label.get(triple_id, 0) else 2
        judgment_submit(assignment_id=assignment.pk, annotator=annotator, value=value)
        judged.append(triple_id)
    campaign_aggregate(campaign=campaign)

    now = corpus_labels(corpus_id=corpus.pk)
    now_label = dict(zip(now.triple_ids.tolist(), now.labels.tolist(), strict=True))
    assert len(judged) == 20
    for triple_id in judged:
        assert now_label[triple_id] == 1 - imported_label.get(triple_id, 0)
