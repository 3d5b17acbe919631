from celery import shared_task

from .services.aggregation import campaign_aggregate_job_run


@shared_task(name="annotation.run_aggregate_job", acks_late=True)
def run_aggregate_job(job_id: int, attempt: int | None = None) -> None:
    campaign_aggregate_job_run(job_id=job_id, attempt=attempt)
