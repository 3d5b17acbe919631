from celery import shared_task

from .services.evaluations import evaluation_job_run
from .services.training import student_train_job_run


@shared_task(name="distillation.run_train_job", acks_late=True)
def run_train_job(job_id: int, attempt: int | None = None) -> None:
    student_train_job_run(job_id=job_id, attempt=attempt)


@shared_task(name="distillation.run_train_job_gpu", acks_late=True)
def run_train_job_gpu(job_id: int, attempt: int | None = None) -> None:
    """Training on a GPU host: routed to the `gpu` queue."""
    student_train_job_run(job_id=job_id, attempt=attempt)


@shared_task(name="distillation.run_evaluate_job", acks_late=True)
def run_evaluate_job(job_id: int, attempt: int | None = None) -> None:
    evaluation_job_run(job_id=job_id, attempt=attempt)


@shared_task(name="distillation.run_evaluate_job_gpu", acks_late=True)
def run_evaluate_job_gpu(job_id: int, attempt: int | None = None) -> None:
    evaluation_job_run(job_id=job_id, attempt=attempt)
