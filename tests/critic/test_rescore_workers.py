"""A cross-encoder rescoring shared by real Celery worker processes serving `gpu` (on this
machine's CPU, through the real Redis broker, a tiny cross-encoder built from a config):
two workers give the same set, score for score, as one worker; a worker killed with
SIGKILL in the middle of a range leaves no gap and no duplicate, and the set is put in
force only once every range is done."""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from django.db import transaction

from config.celery import app
from corpora.models import Corpus, ScoreSet, Triple, TripleScore
from critic.models import Rescoring, ScoringRange
from critic.services import ranges
from critic.services.ranges import rescoring_start, scoring_range_run, scoring_ranges_requeue_stale
from critic.services.scoring import corpus_rescore_job_create
from jobs.models import Job
from tests.critic.tiny_cross import cross_encoder_version, tiny_cross_encoder_build
from tests.generation.test_run_lease import ROOT, subprocess_env

pytestmark = pytest.mark.broker

RANGE = 60  # triples per range: 6 ranges of the 347-triple demo corpus
CHUNK = 20  # triples scored at a time, so a range is a few chunks long
STALE_AFTER = 3.0  # seconds without a heartbeat before the beat gives a range to another


class Workers:
    """Worker processes (tests/critic/rescore_worker.py), each serving `gpu` alone."""

    def __init__(self, tmp_path, settings) -> None:
        self.tmp_path = tmp_path
        self.settings = settings
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, *names: str) -> None:
        env = {
            **subprocess_env(),
            "CELERY_BROKER_URL": self.settings.CELERY_BROKER_URL,
            "SKD_ARTIFACT_ROOT": str(self.settings.ARTIFACT_ROOT),
            "SKD_CRITIC_RESCORE_RANGE": str(RANGE),
            "SKD_CRITIC_RANGE_HEARTBEAT_SECONDS": "0.2",
            "SKD_TEST_RANGE_CHUNK": str(CHUNK),
            "SKD_TEST_SCORE_DELAY": "0.25",
        }
        for name in names:
            var = self.tmp_path / f"var-{name}"
            var.mkdir()
            log = (self.tmp_path / f"{name}.log").open("w")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "tests.critic.rescore_worker", f"{name}@rescore-test"],
                cwd=ROOT,
                env={**env, "SKD_VAR_DIR": str(var)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        names = list(self.processes)
        deadline = time.monotonic() + 90
        while True:
            answered = {name for reply in app.control.ping(timeout=0.5) for name in reply}
            if {f"{name}@rescore-test" for name in names} <= answered:
                return
            for name in names:
                assert self.processes[name].poll() is None, self.log(name)
            assert time.monotonic() < deadline, "the workers did not start"

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()[-3000:]

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(redis_broker, tmp_path, settings):
    running = Workers(tmp_path, settings)
    yield running
    running.stop()


def set_in_force(corpus: Corpus) -> dict[int, float]:
    corpus.refresh_from_db()
    rows = TripleScore.objects.filter(score_set_id=corpus.score_set_id)
    return dict(rows.values_list("triple_id", "score"))


def rescored(job: Job, *, beat: bool = False, timeout: float = 120) -> Rescoring:
    """Wait for the job's rescoring to be put in force; meanwhile, check that the set in
    force is the new one only once every range is done, and (`beat`) do what the beat does
    every 30 s: give silent workers' ranges to others."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rescoring = Rescoring.objects.filter(job=job).first()
        if rescoring is not None:
            in_force = Corpus.objects.get(pk=rescoring.corpus_id).score_set_id
            waiting = rescoring.ranges.exclude(status=ScoringRange.Status.DONE).count()
            if in_force == rescoring.score_set_id:
                assert waiting == 0, "the set was put in force before every range was done"
                rescoring.refresh_from_db()
                assert rescoring.status == Rescoring.Status.DONE
                return rescoring
            assert rescoring.status == Rescoring.Status.SCORING, rescoring.status
            if beat:
                scoring_ranges_requeue_stale(stale_after=STALE_AFTER)
        time.sleep(0.1)
    raise AssertionError(f"job {job.pk} not rescored after {timeout} s")


@pytest.mark.one_leg
def test_two_workers_share_a_rescoring_and_survive_one_killed_mid_range(
    labelled_corpus, workers, tmp_path, monkeypatch
):
    workers.start("a", "b")  # they start while this process trains the version
    version = cross_encoder_version(labelled_corpus, tiny_cross_encoder_build(tmp_path / "base"))
    triples = sorted(Triple.objects.filter(corpus=labelled_corpus).values_list("id", flat=True))

    # One worker (this process) scores every range, one after the other, in a transaction:
    # the messages for its ranges reach the workers only once all are done, and do nothing.
    monkeypatch.setattr(ranges, "RANGE_CHUNK", CHUNK)
    with transaction.atomic():
        alone = rescoring_start(corpus=labelled_corpus, range_size=RANGE)
        assert alone.range_count == 6
        for scoring_range in alone.ranges.all():
            assert scoring_range_run(range_id=scoring_range.pk, attempt=1)
    alone.refresh_from_db()
    assert alone.status == Rescoring.Status.DONE
    one_worker = set_in_force(labelled_corpus)
    assert sorted(one_worker) == triples

    # Two worker processes share the next rescoring.
    workers.wait_ready()
    job = corpus_rescore_job_create(corpus=labelled_corpus)
    assert job.queue == "gpu"
    shared = rescored(job)
    owners = set(shared.ranges.values_list("owner", flat=True))
    assert owners == {f"{socket.gethostname()}:{workers.pid(name)}" for name in "ab"}, owners
    assert set_in_force(labelled_corpus) == one_worker  # score for score
    assert TripleScore.objects.filter(score_set_id=shared.score_set_id).count() == len(triples)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.result["version"], job.result["triples"]) == (version.number, len(triples))
    assert (job.result["ranges"], job.result["workers"]) == (6, 2)
    assert ScoringRange.objects.filter(rescoring=alone).exclude(attempt=1).count() == 0

    # Worker a is killed in the middle of a range: b, given a's range once a's heartbeat
    # went silent, finishes the rescoring, and the set is put in force only then.
    job = corpus_rescore_job_create(corpus=labelled_corpus)
    a_owner = f"{socket.gethostname()}:{workers.pid('a')}"
    deadline = time.monotonic() + 60
    while True:
        midway = (
            ScoringRange.objects.filter(
                rescoring__job=job, status=ScoringRange.Status.RUNNING, owner=a_owner
            )
            .filter(scored__gt=0, scored__lt=RANGE)
            .first()
        )
        if midway is not None:
            break
        assert time.monotonic() < deadline, workers.log("a")
        time.sleep(0.02)
    os.kill(workers.pid("a"), signal.SIGKILL)
    workers.processes["a"].wait()
    killed = rescored(job, beat=True)
    midway.refresh_from_db()
    assert (midway.status, midway.attempt) == (ScoringRange.Status.DONE, 2)
    assert midway.owner == f"{socket.gethostname()}:{workers.pid('b')}"
    rows = TripleScore.objects.filter(score_set_id=killed.score_set_id)
    assert rows.count() == len(triples)  # no duplicate
    assert set_in_force(labelled_corpus) == one_worker  # no gap, the same scores
    assert not ScoreSet.objects.filter(pk=shared.score_set_id).exists()  # swapped once
    assert Corpus.objects.get(pk=labelled_corpus.pk).score_set_id == killed.score_set_id
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert np.isfinite(list(one_worker.values())).all()
