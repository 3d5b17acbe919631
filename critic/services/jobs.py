"""Queueing the critic's jobs: one waiting job of a kind per corpus."""

from __future__ import annotations

from django.db import transaction

from generation.models import Corpus
from jobs.models import Job
from jobs.services import job_create, job_enqueue


def corpus_job_queue(task_kind: str, corpus: Corpus, task, created_by=None, **params) -> Job:
    """One waiting job of a kind per corpus: a second request joins the waiting one."""
    with transaction.atomic():
        Corpus.objects.select_for_update().filter(pk=corpus.pk).first()
        pending = Job.objects.filter(
            kind=task_kind, status=Job.Status.QUEUED, params__corpus_id=corpus.pk
        ).first()
        if pending:
            return pending
        job = job_create(
            kind=task_kind, params={"corpus_id": corpus.pk, **params}, created_by=created_by
        )
        job_enqueue(job=job, task=task)
    return job
