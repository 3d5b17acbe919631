from celery import shared_task

from .services import job_reap_stale


@shared_task(name="jobs.tasks.reap_stale_jobs")
def reap_stale_jobs() -> int:
    return job_reap_stale()
