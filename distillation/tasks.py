"""One task per job kind; a job's queue (default, or gpu for a run not set to the CPU)
is chosen when it is queued and kept on the job, so every slice and retry goes there."""

from celery import shared_task

from .services.evaluations import evaluation_job_run
from .services.training import student_train_job_run


@shared_task(name="distillation.run_train_job", acks_late=True)
def run_train_job(job_id: int, attempt: int | None = None) -> None:
    student_train_job_run(job_id=job_id, attempt=attempt)


@shared_task(name="distillation.run_evaluate_job", acks_late=True)
def run_evaluate_job(job_id: int, attempt: int | None = None) -> None:
    evaluation_job_run(job_id=job_id, attempt=attempt)
