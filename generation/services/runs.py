"""Runs: creating one with all its batches, estimating it, starting it as a job, its report."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count
from django.urls import reverse

from corpora.models import Corpus, Event, Relation, Triple
from jobs.models import Job

from ..errors import GenerationError, RunRefused
from ..limits import run_settings_check
from ..models import FewShotExample, FewShotPool, GenerationBatch, GenerationRun, Teacher
from .execution import EVENT_BATCH_PREFIX, run_execute
from .leases import run_lease_holder
from .teachers import teacher_backend

GENERATION_JOB = "generation.run"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunEstimate:
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None


def run_create(
    *,
    teacher: Teacher,
    pool: FewShotPool,
    corpus_name: str,
    relations: list[str],
    heads: list[str] | None = None,
    source_corpus: Corpus | None = None,
    event_prompts: int = 0,
    n_per_pair: int = 5,
    k_examples: int = 5,
    seed: int = 0,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    created_by=None,
) -> GenerationRun:
    """A run and all its batches; nothing is sent yet. Heads come from a list, a corpus's
    events, or new events written by the teacher (event_prompts > 0)."""
    run_settings_check(
        event_prompts=event_prompts,
        n_per_pair=n_per_pair,
        k_examples=k_examples,
        seed=seed,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
    )
    if teacher.backend == Teacher.Backend.OPENAI:
        teacher_backend(teacher)  # a missing key variable fails here, before anything exists
    found = list(Relation.objects.filter(name__in=relations))
    missing = sorted(set(relations) - {r.name for r in found})
    if missing or not relations:
        raise GenerationError(
            f"Unknown relation(s): {', '.join(missing) or '(none given)'}", field="relations"
        )
    head_list = [h.strip() for h in (heads or []) if h.strip()]
    if source_corpus is not None:
        head_ids = Triple.objects.filter(corpus=source_corpus).values("head_id").distinct()
        head_list += list(Event.objects.filter(pk__in=head_ids).values_list("text", flat=True))
    if not head_list and not event_prompts:
        raise GenerationError(
            "A run needs heads: a list, a corpus, or new events (event prompts).", field="heads"
        )
    corpus, _ = Corpus.objects.get_or_create(name=corpus_name)
    with transaction.atomic():
        run = GenerationRun.objects.create(
            teacher=teacher,
            pool=pool,
            corpus=corpus,
            mode=GenerationRun.Mode.EVENTS if event_prompts else GenerationRun.Mode.INFERENCES,
            n_per_pair=n_per_pair,
            k_examples=k_examples,
            event_prompts=event_prompts,
            seed=seed,
            temperature=teacher.temperature if temperature is None else temperature,
            top_p=teacher.top_p if top_p is None else top_p,
            max_tokens=teacher.max_tokens if max_tokens is None else max_tokens,
            created_by=created_by,
        )
        run.relations.set(found)
        batches = [
            GenerationBatch(run=run, head=f"{EVENT_BATCH_PREFIX}{i}") for i in range(event_prompts)
        ]
        batches += [
            GenerationBatch(run=run, head=head, relation=relation)
            for head in dict.fromkeys(head_list)
            for relation in found
        ]
        GenerationBatch.objects.bulk_create(batches, ignore_conflicts=True, batch_size=5000)
    return run


def run_estimate(run: GenerationRun) -> RunEstimate:
    """Requests still to send and a token estimate (about 4 characters per token), with a
    cost when the teacher has prices. Inferences of events not yet written are estimated
    as 5 events per event prompt."""
    pending = run.batches.exclude(status=GenerationBatch.Status.DONE)
    event_batches = pending.filter(relation__isnull=True).count()
    pair_batches = pending.filter(relation__isnull=False).count()
    relations = max(1, run.relations.count())
    future_pairs = event_batches * 5 * relations
    examples = FewShotExample.objects.filter(pool=run.pool, relation__isnull=False)
    avg_example = sum(len(e.head) + len(e.tail) + 30 for e in examples[:200]) / max(
        1, min(200, examples.count())
    )
    inference_prompt_tokens = int((avg_example * run.k_examples + 60) / 4)
    event_prompt_tokens = int(run.k_examples * 40 / 4)
    requests = event_batches + pair_batches + future_pairs
    prompt_tokens = (
        event_batches * event_prompt_tokens
        + (pair_batches + future_pairs) * inference_prompt_tokens
    )
    completion_tokens = (pair_batches + future_pairs) * run.n_per_pair * run.max_tokens + (
        event_batches * run.max_tokens * 8
    )
    cost = _cost(run.teacher, prompt_tokens, completion_tokens)
    return RunEstimate(requests, prompt_tokens, completion_tokens, cost)


def _cost(teacher: Teacher, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Dollars for these tokens at the teacher's prices; None when it has none."""
    if teacher.prompt_price_per_1k is None or teacher.completion_price_per_1k is None:
        return None
    return round(
        prompt_tokens / 1000 * float(teacher.prompt_price_per_1k)
        + completion_tokens / 1000 * float(teacher.completion_price_per_1k),
        4,
    )


def run_job_create(*, run: GenerationRun, created_by=None) -> Job:
    from jobs.services import job_create, job_enqueue

    from ..tasks import run_generation_job

    gpu = run.teacher.backend == Teacher.Backend.TRANSFORMERS and run.teacher.device != "cpu"
    with transaction.atomic():
        job = job_create(
            kind=GENERATION_JOB,
            params={"run_id": run.pk, "cancellable": True},
            created_by=created_by,
            title=f"Generation run {run.pk} ({run.teacher.name})",
            subject_url=reverse("generation:run_detail", args=[run.pk]),
            subject_label=f"Run {run.pk}",
        )
        GenerationRun.objects.filter(pk=run.pk).update(job=job)
        job_enqueue(job=job, task=run_generation_job, queue="gpu" if gpu else None)
    return job


def run_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    from jobs.services import job_run

    def body(job: Job, progress) -> dict:
        run = GenerationRun.objects.get(job=job)

        def cancelled() -> bool:
            return Job.objects.filter(pk=job.pk, status=Job.Status.CANCELLED).exists()

        run = run_execute(run=run, progress=progress, should_stop=cancelled)
        return run_report(run)

    return job_run(job_id=job_id, attempt=attempt, body=body)


def run_report(run: GenerationRun) -> dict:
    counts = dict(run.batches.values_list("status").annotate(n=Count("pk")).order_by())
    return {
        "run_id": run.pk,
        "corpus_id": run.corpus_id,
        "cost": _cost(run.teacher, run.prompt_tokens, run.completion_tokens),
        "batches": counts,
        "requests": run.requests_done,
        "triples": run.triples_written,
        "events": run.events_written,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "dropped": run.dropped,
        "errors": run.errors,
    }


def run_start_refusal(run: GenerationRun) -> str | None:
    """Why the run cannot be started now, or None when it can."""
    job = run.job
    if job is not None and job.is_active:
        return f"Run {run.pk} is already under way as job {job.pk} ({job.status})."
    holder = run_lease_holder(run)
    if holder:
        return holder
    unfinished = run.batches.exclude(status=GenerationBatch.Status.DONE).exists()
    if job is not None and job.status == Job.Status.SUCCEEDED and not unfinished:
        return f"Run {run.pk} is finished: every batch is done."
    return None


def run_start(*, run: GenerationRun, created_by) -> Job:
    """A new job for the run, which continues where it stopped; RunRefused when it is
    under way or finished. The run row is locked so that two clicks queue one job."""
    with transaction.atomic():
        run = GenerationRun.objects.select_for_update().get(pk=run.pk)
        refusal = run_start_refusal(run)
        if refusal:
            raise RunRefused(refusal)
        return run_job_create(run=run, created_by=created_by)
