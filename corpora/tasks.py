from celery import shared_task

from .services import corpus_export_job_run, corpus_import_job_run


@shared_task(name="corpora.run_import_job", acks_late=True)
def run_import_job(job_id: int, attempt: int | None = None) -> None:
    corpus_import_job_run(job_id=job_id, attempt=attempt)


@shared_task(name="corpora.run_export_job", acks_late=True)
def run_export_job(job_id: int, attempt: int | None = None) -> None:
    corpus_export_job_run(job_id=job_id, attempt=attempt)


@shared_task(name="corpora.remove_leftovers")
def remove_leftovers() -> dict[str, int]:
    """What dead jobs left: old uploads, partial exports, load tables, empty corpora."""
    from .leftovers import leftovers_remove

    return leftovers_remove().as_dict()
