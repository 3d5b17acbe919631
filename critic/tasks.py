"""One task per job kind; a job's queue (default or gpu) is chosen when it is queued."""

from celery import shared_task

from .services.embedding import corpus_embed_job_run
from .services.ranges import rescoring_finish, scoring_range_run, scoring_ranges_requeue_stale
from .services.scoring import corpus_rescore_job_run
from .services.training import critic_tick, critic_train_job_run


@shared_task(name="critic.run_train_job", acks_late=True)
def run_train_job(job_id: int, attempt: int | None = None) -> None:
    critic_train_job_run(job_id=job_id, attempt=attempt)


@shared_task(name="critic.run_rescore_job", acks_late=True)
def run_rescore_job(job_id: int, attempt: int | None = None) -> None:
    corpus_rescore_job_run(job_id=job_id, attempt=attempt)


@shared_task(name="critic.run_embed_job", acks_late=True)
def run_embed_job(job_id: int, attempt: int | None = None) -> None:
    corpus_embed_job_run(job_id=job_id, attempt=attempt)


@shared_task(name="critic.run_scoring_range", acks_late=True)
def run_scoring_range(range_id: int, attempt: int | None = None) -> None:
    scoring_range_run(range_id=range_id, attempt=attempt)


@shared_task(name="critic.finish_rescoring", acks_late=True)
def finish_rescoring(rescoring_id: int) -> None:
    rescoring_finish(rescoring_id=rescoring_id)


@shared_task(name="critic.requeue_stale_ranges", ignore_result=True)
def requeue_stale_ranges() -> None:
    scoring_ranges_requeue_stale()


@shared_task(name="critic.tick", ignore_result=True)
def tick() -> None:
    critic_tick()
