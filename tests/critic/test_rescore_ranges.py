"""A cross-encoder rescoring split into ranges of triple ids that any worker takes: each
range written once into the new score set, the set put in force once, when the last range
is done; dead workers' ranges redone, late messages ignored. Here the ranges run in this
process, one message at a time; tests/critic/test_rescore_workers.py runs them on real
Celery workers."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from corpora.models import Corpus, ScoreSet, Triple, TripleScore
from critic.corpus_data import id_ranges
from critic.models import CorpusScoring, Rescoring, ScoringRange
from critic.services import ranges
from critic.services.ranges import (
    rescoring_finish,
    rescoring_start,
    scoring_range_run,
    scoring_ranges_requeue_stale,
)
from critic.services.scoring import (
    corpus_rescore,
    corpus_rescore_job_create,
    corpus_rescore_job_run,
)
from critic.services.training import critic_activate
from jobs.models import Job
from tests.critic.tiny_cross import cross_encoder_version, tiny_cross_encoder_build

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return tiny_cross_encoder_build(tmp_path_factory.mktemp("tiny-cross"))


@pytest.fixture(autouse=True)
def _quiet_leases(settings):
    """The lease threads' beats would come from another connection, which cannot see this
    test's uncommitted rows; these tests take well under the interval."""
    settings.CRITIC_RANGE_HEARTBEAT_SECONDS = 3600


def scores_in_force(corpus: Corpus) -> dict[int, float]:
    corpus.refresh_from_db()
    return dict(
        TripleScore.objects.filter(score_set_id=corpus.score_set_id).values_list(
            "triple_id", "score"
        )
    )


def test_ranges_are_planned_a_range_at_a_time_and_cover_every_triple_once(labelled_corpus):
    ids = list(
        Triple.objects.filter(corpus=labelled_corpus).order_by("id").values_list("id", flat=True)
    )
    planned = list(id_ranges(corpus_id=labelled_corpus.pk, size=100))
    assert [count for _, _, count in planned] == [100, 100, 100, len(ids) - 300]
    assert planned[0][0] == ids[0] and planned[-1][1] == ids[-1]
    covered = [i for first, last, _ in planned for i in ids if first <= i <= last]
    assert covered == ids


def test_the_set_is_put_in_force_only_when_the_last_range_is_done_and_equals_one_worker(
    labelled_corpus, tiny_base, settings, django_capture_on_commit_callbacks
):
    settings.CRITIC_RESCORE_RANGE = 100
    version = cross_encoder_version(labelled_corpus, tiny_base)
    one_worker = corpus_rescore(corpus=labelled_corpus)
    before = scores_in_force(labelled_corpus)
    old_set = labelled_corpus.score_set_id
    job = corpus_rescore_job_create(corpus=labelled_corpus)
    assert job.queue == "gpu"
    with django_capture_on_commit_callbacks() as callbacks:
        corpus_rescore_job_run(job_id=job.pk, attempt=1)
    job.refresh_from_db()
    rescoring = Rescoring.objects.get(job=job)
    assert (rescoring.queue, rescoring.range_count, rescoring.triples) == ("gpu", 4, 347)
    assert len(callbacks) == 4  # a message per range, sent once the plan is committed
    # The job stays running while workers take the ranges.
    assert job.status == Job.Status.RUNNING and job.result["ranges"] == 4
    # A retry of the job (reaped while the queue was busy) goes on with the same rescoring.
    assert rescoring_start(corpus=labelled_corpus, job=job).pk == rescoring.pk

    work = list(rescoring.ranges.order_by("-first_id"))  # last to first: order is free
    for scoring_range in work[:3]:
        assert scoring_range_run(range_id=scoring_range.pk, attempt=1, chunk_size=30)
        assert scoring_range_run(range_id=scoring_range.pk, attempt=1) is None  # again
        assert scoring_range_run(range_id=scoring_range.pk, attempt=2) is None
        labelled_corpus.refresh_from_db()
        assert labelled_corpus.score_set_id == old_set  # readers still see the old set only
        assert scores_in_force(labelled_corpus) == before
    assert scoring_range_run(range_id=work[3].pk, attempt=2) is None  # not its attempt
    assert scoring_range_run(range_id=work[3].pk, attempt=1, chunk_size=30)

    rescoring.refresh_from_db()
    assert rescoring.status == Rescoring.Status.DONE
    labelled_corpus.refresh_from_db()
    assert labelled_corpus.score_set_id == rescoring.score_set_id
    assert not ScoreSet.objects.filter(pk=old_set).exists()  # the old set was dropped
    scores = scores_in_force(labelled_corpus)
    ids = sorted(Triple.objects.filter(corpus=labelled_corpus).values_list("id", flat=True))
    assert sorted(scores) == ids
    assert TripleScore.objects.filter(score_set_id=rescoring.score_set_id).count() == len(ids)
    np.testing.assert_allclose([scores[i] for i in ids], [before[i] for i in ids], atol=1e-5)
    scoring = CorpusScoring.objects.get(corpus=labelled_corpus)
    assert scoring.version == version and scoring.scored_count == len(ids)
    assert scoring.histogram == one_worker.histogram
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert (job.result["triples"], job.result["ranges"], job.result["workers"]) == (347, 4, 1)

    # A second finisher (the beat, a message delivered again) finds nothing to do.
    assert rescoring_finish(rescoring_id=rescoring.pk) is None
    assert Corpus.objects.get(pk=labelled_corpus.pk).score_set_id == rescoring.score_set_id


def test_a_dead_workers_range_is_redone_once_and_one_that_keeps_dying_fails_the_rescoring(
    labelled_corpus, tiny_base, settings, django_capture_on_commit_callbacks
):
    settings.CRITIC_RANGE_MAX_ATTEMPTS = 2
    cross_encoder_version(labelled_corpus, tiny_base)
    rescoring = rescoring_start(corpus=labelled_corpus, range_size=200)
    first, second = rescoring.ranges.order_by("first_id")
    assert scoring_range_run(range_id=second.pk, attempt=1)
    # A worker took the first range, then was killed: its heartbeat stopped.
    ScoringRange.objects.filter(pk=first.pk).update(
        status=ScoringRange.Status.RUNNING,
        attempt=1,
        owner="gpu-host-2:4242",
        heartbeat_at=timezone.now() - timedelta(seconds=30),
    )
    assert scoring_ranges_requeue_stale(stale_after=60) == 0  # not silent long enough
    with django_capture_on_commit_callbacks() as callbacks:
        assert scoring_ranges_requeue_stale(stale_after=10) == 1
    assert len(callbacks) == 1  # its message for attempt 2
    first.refresh_from_db()
    assert (first.status, first.owner) == (ScoringRange.Status.QUEUED, "")
    assert "no heartbeat for over 10 s from gpu-host-2:4242" in first.error
    assert Corpus.objects.get(pk=labelled_corpus.pk).score_set_id != rescoring.score_set_id
    # The dead worker's message, delivered again, starts nothing; the next attempt's does.
    assert scoring_range_run(range_id=first.pk, attempt=1) is None
    assert scoring_range_run(range_id=first.pk, attempt=2).attempt == 2
    assert Corpus.objects.get(pk=labelled_corpus.pk).score_set_id == rescoring.score_set_id
    assert len(scores_in_force(labelled_corpus)) == 347
    assert TripleScore.objects.filter(score_set_id=rescoring.score_set_id).count() == 347
    in_force = rescoring.score_set_id

    # A range whose workers keep dying: after CRITIC_RANGE_MAX_ATTEMPTS the rescoring
    # fails, its job says why, and the set in force stays.
    job = corpus_rescore_job_create(corpus=labelled_corpus)
    corpus_rescore_job_run(job_id=job.pk, attempt=1)
    failing = Rescoring.objects.get(job=job)
    ScoringRange.objects.filter(pk=failing.ranges.first().pk).update(
        status=ScoringRange.Status.RUNNING,
        attempt=2,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    scoring_ranges_requeue_stale(stale_after=10)
    failing.refresh_from_db()
    assert failing.status == Rescoring.Status.FAILED
    assert not ScoreSet.objects.filter(pk=failing.score_set_id).exists()
    assert Corpus.objects.get(pk=labelled_corpus.pk).score_set_id == in_force
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "2 times" in job.error

    # A rescoring whose last worker died between writing its range and the swap: the beat
    # sends a message to finish it, and finishing it puts the set in force.
    rescoring = rescoring_start(corpus=labelled_corpus, range_size=400)
    only = rescoring.ranges.get()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ranges, "rescoring_finish", lambda **kwargs: None)  # died right here
        assert scoring_range_run(range_id=only.pk, attempt=1)
    ScoringRange.objects.filter(pk=only.pk).update(done_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks() as callbacks:
        scoring_ranges_requeue_stale(stale_after=60)
    assert len(callbacks) == 1  # a message to finish it
    assert rescoring_finish(rescoring_id=rescoring.pk)
    assert Corpus.objects.get(pk=labelled_corpus.pk).score_set_id == rescoring.score_set_id


def test_a_newer_version_activated_meanwhile_supersedes_the_rescoring(
    labelled_corpus, tiny_base, settings
):
    settings.CRITIC_RESCORE_RANGE = 200
    cross_encoder_version(labelled_corpus, tiny_base)
    corpus_rescore(corpus=labelled_corpus)
    old_set = Corpus.objects.get(pk=labelled_corpus.pk).score_set_id
    job = corpus_rescore_job_create(corpus=labelled_corpus)
    corpus_rescore_job_run(job_id=job.pk, attempt=1)
    rescoring = Rescoring.objects.get(job=job)
    first, second = rescoring.ranges.order_by("first_id")[:2]
    assert scoring_range_run(range_id=first.pk, attempt=1)
    newer = cross_encoder_version(labelled_corpus, tiny_base)
    critic_activate(version=newer, queue_rescore=False)
    assert scoring_range_run(range_id=second.pk, attempt=1) is None
    rescoring.refresh_from_db()
    assert rescoring.status == Rescoring.Status.SUPERSEDED
    assert not TripleScore.objects.filter(score_set_id=rescoring.score_set_id).exists()
    assert not ScoreSet.objects.filter(pk=rescoring.score_set_id).exists()
    assert Corpus.objects.get(pk=labelled_corpus.pk).score_set_id == old_set
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.result["superseded"] is True

    # A one-process rescoring (score_corpus) that puts its set in force meanwhile drops
    # the set being shared: its next range gives way instead of writing into nothing.
    job = corpus_rescore_job_create(corpus=labelled_corpus)
    corpus_rescore_job_run(job_id=job.pk, attempt=1)
    rescoring = Rescoring.objects.get(job=job)
    first, second = rescoring.ranges.order_by("first_id")[:2]
    assert scoring_range_run(range_id=first.pk, attempt=1)
    corpus_rescore(corpus=labelled_corpus)
    in_force = Corpus.objects.get(pk=labelled_corpus.pk).score_set_id
    assert scoring_range_run(range_id=second.pk, attempt=1) is None
    rescoring.refresh_from_db()
    assert rescoring.status == Rescoring.Status.SUPERSEDED
    assert Corpus.objects.get(pk=labelled_corpus.pk).score_set_id == in_force
    assert TripleScore.objects.filter(score_set_id=in_force).count() == 347
