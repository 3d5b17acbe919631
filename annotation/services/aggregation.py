"""Aggregation of a campaign's judgments into item labels (the work is in
`annotation.aggregating`), directly or as a job.
"""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse

from jobs.models import Job
from jobs.services import job_create, job_enqueue, job_run

from ..aggregating import campaign_aggregate as _aggregate
from ..models import Campaign

AGGREGATE_JOB = "annotation.aggregate"


def campaign_aggregate(*, campaign: Campaign) -> dict:
    """Item labels, agreement, acceptance and the annotator table (see aggregating.py)."""
    return _aggregate(campaign=campaign)


def campaign_aggregate_job_create(*, campaign: Campaign, created_by=None) -> Job:
    """Queue an aggregation unless one for this campaign is already waiting or running."""
    from ..tasks import run_aggregate_job

    with transaction.atomic():
        pending = Job.objects.filter(
            kind=AGGREGATE_JOB, status__in=Job.ACTIVE_STATUSES, params__campaign_id=campaign.pk
        ).first()
        if pending:
            return pending
        job = job_create(
            kind=AGGREGATE_JOB,
            params={"campaign_id": campaign.pk},
            created_by=created_by,
            title=f"Aggregating {campaign.name}",
            subject_url=reverse("annotation:campaign_detail", args=[campaign.pk]),
            subject_label=campaign.name,
        )
        job_enqueue(job=job, task=run_aggregate_job)
    return job


def campaign_aggregate_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    def body(job: Job, progress) -> dict:
        campaign = Campaign.objects.get(pk=job.params["campaign_id"])
        stats = campaign_aggregate(campaign=campaign)
        return {
            "campaign": campaign.name,
            "judgments": stats["judgments"],
            "items_labelled": stats["items_labelled"],
        }

    return job_run(job_id=job_id, attempt=attempt, body=body)
