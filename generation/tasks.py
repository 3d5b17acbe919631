from celery import shared_task


@shared_task(name="generation.run_generation_job", acks_late=True)
def run_generation_job(job_id: int, attempt: int | None = None) -> None:
    """A run's job; a run whose teacher is loaded in process on a GPU is sent to the gpu
    queue (the queue is chosen when the job is queued, see run_job_create)."""
    from .services.runs import run_job_run

    run_job_run(job_id=job_id, attempt=attempt)
