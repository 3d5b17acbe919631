"""Queueing the critic's jobs: one waiting job of a kind per corpus."""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse

from corpora.models import Corpus
from jobs.models import Job
from jobs.services import job_create, job_enqueue

TITLES = {
    "critic.train": "Critic training",
    "critic.rescore": "Rescoring",
    "critic.embed": "Embedding",
}


def corpus_job_queue(
    task_kind: str, corpus: Corpus, task, created_by=None, queue: str | None = None, **params
) -> Job:
    """One waiting job of a kind per corpus: a second request joins the waiting one. The
    job goes to `queue` (the default one unless told: the gpu queue for a tier that wants
    a GPU)."""
    with transaction.atomic():
        Corpus.objects.select_for_update().filter(pk=corpus.pk).first()
        pending = Job.objects.filter(
            kind=task_kind, status=Job.Status.QUEUED, params__corpus_id=corpus.pk
        ).first()
        if pending:
            return pending
        job = job_create(
            kind=task_kind,
            params={"corpus_id": corpus.pk, **params},
            created_by=created_by,
            title=f"{TITLES.get(task_kind, task_kind)} for {corpus.name}",
            subject_url=reverse("critic:dashboard", args=[corpus.pk]),
            subject_label=f"The critic of {corpus.name}",
        )
        job_enqueue(job=job, task=task, queue=queue)
    return job
