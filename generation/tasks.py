from celery import shared_task


@shared_task(name="generation.run_generation_job", acks_late=True)
def run_generation_job(job_id: int, attempt: int | None = None) -> None:
    from .services import run_job_run

    run_job_run(job_id=job_id, attempt=attempt)


@shared_task(name="generation.run_generation_job_gpu", acks_late=True)
def run_generation_job_gpu(job_id: int, attempt: int | None = None) -> None:
    """A teacher loaded in process on a GPU: routed to the `gpu` queue."""
    from .services import run_job_run

    run_job_run(job_id=job_id, attempt=attempt)
