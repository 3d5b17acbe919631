"""Writes for teachers, few-shot pools and generation runs (the services of this part).

A run is split into batches keyed by (head, relation), or one per event prompt. Executing a
run sends the pending batches to the teacher and, as answers arrive, writes each batch's
cleaned triples and marks it done in the same transaction: a run that crashes or is
restarted continues with what is still pending and never writes a batch twice.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson
from django.db import transaction
from django.db.models import Count, F

from jobs.models import Job

from .bulk import make_loader
from .importing import StageBlock, tail_key
from .ml.http_teacher import Completion, CompletionRequest, OpenAICompatibleTeacher, TeacherError
from .ml.prompts import (
    MAX_EVENT_WORDS,
    clean_outputs,
    event_prompt,
    inference_prompt,
    parse_numbered_list,
    prompt_hash,
)
from .models import (
    Corpus,
    Event,
    FewShotExample,
    FewShotPool,
    GenerationBatch,
    GenerationRun,
    Relation,
    Teacher,
    Triple,
)

EVENT_BATCH_PREFIX = "#events "
WINDOW = 5_000  # pending batches fetched per round
FLUSH_EVERY = 50  # answers written per transaction
GENERATION_JOB = "generation_run"


# --- Teachers -----------------------------------------------------------------------------


def teacher_create(**fields) -> Teacher:
    for price in ("prompt_price_per_1k", "completion_price_per_1k"):
        if isinstance(fields.get(price), float):  # 0.15 as a float is not 0.15 exactly
            fields[price] = Decimal(str(fields[price]))
    teacher = Teacher(**fields)
    teacher.full_clean()
    teacher.save()
    return teacher


def teacher_backend(teacher: Teacher):
    """The client for a teacher; a TeacherError names what is wrong with its settings."""
    if teacher.backend == Teacher.Backend.OPENAI:
        if not teacher.base_url:
            raise TeacherError(f"Teacher '{teacher.name}': the HTTP backend needs a base URL.")
        api_key = None
        if teacher.api_key_env:
            api_key = os.environ.get(teacher.api_key_env)
            if not api_key:
                raise TeacherError(
                    f"Teacher '{teacher.name}': the environment variable "
                    f"{teacher.api_key_env} (its API key) is not set where the work runs."
                )
        return OpenAICompatibleTeacher(
            base_url=teacher.base_url,
            model=teacher.model,
            endpoint=teacher.endpoint,
            api_key=api_key,
            concurrency=teacher.concurrency,
        )
    from .ml.local_teacher import TransformersTeacher

    return TransformersTeacher(
        teacher.model, device=teacher.device or None, dtype=teacher.dtype or "auto"
    )


def teacher_check(teacher: Teacher) -> None:
    """Fail before any work when the teacher cannot answer (key missing, server down)."""
    backend = teacher_backend(teacher)
    try:
        backend.check_sync()
    except TeacherError as exc:
        raise TeacherError(f"Teacher '{teacher.name}': {exc}") from exc


# --- Few-shot pools -------------------------------------------------------------------------


def pool_import_tsv(*, pool: FewShotPool, path: str | Path) -> int:
    """Add examples from an ATOMIC TSV file (see pool_import_lines); how many are new."""
    with open(path, encoding="utf-8") as handle:
        return pool_import_lines(pool=pool, lines=handle, source=f"{path}, ")


def pool_import_lines(*, pool: FewShotPool, lines: Iterable[str], source: str = "") -> int:
    """Add ATOMIC TSV lines (head, relation, tail): every head is a seed event, every tail
    other than 'none' of a known relation an example. Errors name ``source`` and the line.
    Returns how many examples are new."""
    relations = dict(Relation.objects.values_list("name", "id"))
    rows: list[FewShotExample] = []
    heads: dict[str, None] = {}
    for line_number, line in enumerate(lines, start=1):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 3:
            raise ValueError(f"{source}line {line_number}: expected head<TAB>relation<TAB>tail")
        head, relation, tail = (p.strip() for p in parts)
        if not head:
            raise ValueError(f"{source}line {line_number}, field 'head': empty")
        heads[head] = None
        if relation in relations and tail and tail.lower() != "none":
            rows.append(
                FewShotExample(pool=pool, head=head, relation_id=relations[relation], tail=tail)
            )
    rows += [FewShotExample(pool=pool, head=head, tail="") for head in heads]
    before = pool.examples.count()
    FewShotExample.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return pool.examples.count() - before


# --- Runs ---------------------------------------------------------------------------------


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
    if teacher.backend == Teacher.Backend.OPENAI:
        teacher_backend(teacher)  # a missing key variable fails here, before anything exists
    found = list(Relation.objects.filter(name__in=relations))
    missing = sorted(set(relations) - {r.name for r in found})
    if missing or not relations:
        raise ValueError(f"Unknown relation(s): {', '.join(missing) or '(none given)'}")
    head_list = [h.strip() for h in (heads or []) if h.strip()]
    if source_corpus is not None:
        head_ids = Triple.objects.filter(corpus=source_corpus).values("head_id").distinct()
        head_list += list(Event.objects.filter(pk__in=head_ids).values_list("text", flat=True))
    if not head_list and not event_prompts:
        raise ValueError("A run needs heads: a list, a corpus, or new events (event prompts).")
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


def _examples_by_relation(pool: FewShotPool) -> tuple[list[str], dict[int, list[tuple[str, str]]]]:
    seeds, by_relation = [], {}
    for head, relation_id, tail in pool.examples.values_list("head", "relation_id", "tail"):
        if relation_id is None:
            seeds.append(head)
        else:
            by_relation.setdefault(relation_id, []).append((head, tail))
    return seeds, by_relation


def _requests(run: GenerationRun, batches: list[tuple]) -> Iterator[CompletionRequest]:
    """The request of each batch, reproducible: its prompt is drawn with a generator seeded
    by the run's seed and the batch's key."""
    seeds, examples = _examples_by_relation(run.pool)
    templates = dict(Relation.objects.values_list("id", "prompt_template"))
    for batch_id, head, relation_id in batches:
        rng = random.Random(f"{run.seed}:{head}:{relation_id}")
        if relation_id is None:
            prompt = event_prompt(seeds, run.k_examples, rng)
            n, max_tokens, stop = 1, max(run.max_tokens * 8, 64), ("\n\n",)
        else:
            prompt = inference_prompt(
                templates[relation_id], examples.get(relation_id, []), head, run.k_examples, rng
            )
            n, max_tokens, stop = run.n_per_pair, run.max_tokens, ("\n",)
        yield CompletionRequest(
            key=(batch_id, head, relation_id, prompt_hash(prompt)),
            prompt=prompt,
            n=n,
            temperature=run.temperature,
            top_p=run.top_p,
            max_tokens=max_tokens,
            stop=stop,
            seed=run.seed,
        )


def _answers(backend, requests: list[CompletionRequest], stop: threading.Event):
    """Run the backend in a thread of its own and hand its answers to this thread, where
    Django's connection lives."""
    answers: queue.Queue = queue.Queue(maxsize=1000)
    done = object()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            backend.run_sync(requests, lambda r, c: answers.put((r, c)), should_stop=stop.is_set)
        except BaseException as exc:  # handed to the caller
            failure.append(exc)
        finally:
            answers.put(done)

    thread = threading.Thread(target=work, name="teacher", daemon=True)
    thread.start()
    while True:
        try:
            item = answers.get(timeout=5)
        except queue.Empty:
            yield None  # a quiet teacher: the caller still beats its heart and checks for cancel
            continue
        if item is done:
            break
        yield item
    thread.join()
    if failure:
        raise failure[0]


class _Writer:
    """Writes answers in groups: triples, new events' batches, batch states and run totals
    in one transaction per group."""

    def __init__(self, run: GenerationRun) -> None:
        self.run = run
        self.pending: list[tuple[CompletionRequest, Completion | TeacherError]] = []
        self.relations = list(run.relations.values_list("id", flat=True))

    def add(self, request: CompletionRequest, result: Completion | TeacherError) -> None:
        self.pending.append((request, result))
        if len(self.pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        run = self.run
        heads, relation_ids, tails, keys, fields = [], [], [], [], []
        new_events: dict[str, None] = {}
        done: list[tuple[int, int, str, int]] = []
        failed: list[tuple[int, str]] = []
        dropped: Counter = Counter()
        prompt_tokens = completion_tokens = events = 0
        for request, result in self.pending:
            batch_id, head, relation_id, digest = request.key
            if isinstance(result, TeacherError):
                failed.append((batch_id, str(result)))
                continue
            prompt_tokens += result.prompt_tokens
            completion_tokens += result.completion_tokens
            if relation_id is None:
                items = parse_numbered_list(result.texts[0]) if result.texts else []
                cleaned = clean_outputs(items, max_words=MAX_EVENT_WORDS)
                new_events.update(dict.fromkeys(cleaned.kept))
            else:
                cleaned = clean_outputs(result.texts, head=head)
                for text, index in zip(cleaned.kept, cleaned.kept_index, strict=True):
                    heads.append(head)
                    relation_ids.append(relation_id)
                    tails.append(text)
                    keys.append(tail_key(text))
                    fields.append(
                        orjson.dumps(
                            {
                                "run": run.pk,
                                "teacher": run.teacher.name,
                                "prompt": digest,
                                "logprob": result.logprobs[index],
                            }
                        ).decode()
                    )
            dropped.update(cleaned.dropped)
            done.append((batch_id, result.attempts, digest, len(cleaned.kept)))
        with transaction.atomic():
            if heads:
                loader = make_loader(
                    corpus_id=run.corpus_id, origin=Triple.Origin.TEACHER, job_id=run.job_id
                )
                loader.open()
                try:
                    # One row per (head, relation, tail key): duplicates within a group fold.
                    seen: dict[tuple, int] = {}
                    for i in range(len(heads)):
                        seen.setdefault((heads[i], relation_ids[i], keys[i]), i)
                    order = list(seen.values())
                    loader.add(
                        StageBlock(
                            seqs=range(1, len(order) + 1),
                            heads=[heads[i] for i in order],
                            relation_ids=[relation_ids[i] for i in order],
                            tails=[tails[i] for i in order],
                            keys=[keys[i] for i in order],
                            splits=["train"] * len(order),
                            fields=[fields[i] for i in order],
                            counts=[1] * len(order),
                        )
                    )
                    loader.finish()
                finally:
                    loader.close()
            if new_events:
                # Events the run already has (from an earlier prompt) are duplicates.
                known = set(
                    GenerationBatch.objects.filter(
                        run=run, head__in=list(new_events), relation__isnull=False
                    ).values_list("head", flat=True)
                )
                fresh = [event for event in new_events if event not in known]
                dropped["duplicate"] += len(new_events) - len(fresh)
                events = len(fresh)
                GenerationBatch.objects.bulk_create(
                    [
                        GenerationBatch(run=run, head=event, relation_id=relation)
                        for event in fresh
                        for relation in self.relations
                    ],
                    ignore_conflicts=True,
                    batch_size=5000,
                )
            for batch_id, attempts, digest, kept in done:
                GenerationBatch.objects.filter(pk=batch_id).update(
                    status=GenerationBatch.Status.DONE,
                    attempts=F("attempts") + attempts,
                    prompt_hash=digest,
                    kept=kept,
                    error="",
                )
            for batch_id, error in failed:
                GenerationBatch.objects.filter(pk=batch_id).update(
                    status=GenerationBatch.Status.FAILED, error=error[:2000]
                )
            totals = dict(run.dropped)
            for reason, count in dropped.items():
                totals[reason] = totals.get(reason, 0) + count
            run.dropped = totals
            GenerationRun.objects.filter(pk=run.pk).update(
                requests_done=F("requests_done") + len(done),
                prompt_tokens=F("prompt_tokens") + prompt_tokens,
                completion_tokens=F("completion_tokens") + completion_tokens,
                triples_written=F("triples_written") + len(heads),
                events_written=F("events_written") + events,
                errors=F("errors") + len(failed),
                dropped=totals,
            )
        self.pending.clear()


def run_execute(
    *,
    run: GenerationRun,
    progress: Callable[[int, int | None, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    check_every: float = 1.0,
) -> GenerationRun:
    """Send every pending (or earlier failed) batch and write the answers. Safe to call
    again after a crash or a cancel: done batches are never sent again. ``should_stop`` (a
    cancel) and ``progress`` are called at most every ``check_every`` seconds."""
    from .services import corpus_refresh_counts

    backend = teacher_backend(run.teacher)
    teacher_check(run.teacher)
    run.batches.filter(status=GenerationBatch.Status.FAILED).update(
        status=GenerationBatch.Status.PENDING
    )
    writer = _Writer(run)
    stop = threading.Event()
    last_check = 0.0
    started = time.monotonic()
    done_at_start = run.batches.filter(status=GenerationBatch.Status.DONE).count()
    while not stop.is_set():
        window = list(
            run.batches.filter(status=GenerationBatch.Status.PENDING)
            .order_by("relation_id", "pk")  # event prompts (no relation) first
            .values_list("pk", "head", "relation_id")[:WINDOW]
        )
        if not window:
            break
        for answer in _answers(backend, list(_requests(run, window)), stop):
            if answer is not None:
                writer.add(*answer)
            now = time.monotonic()
            if now - last_check >= check_every:
                last_check = now
                if should_stop is not None and should_stop():
                    stop.set()
                if progress is not None:
                    progress(*_progress_line(run, writer, started, done_at_start))
        writer.flush()
    corpus_refresh_counts(corpus=run.corpus)
    run.refresh_from_db()
    return run


def _progress_line(
    run: GenerationRun, writer: _Writer, started: float, done_at_start: int
) -> tuple[int, int, str]:
    """(done, total, 'rate · ETA · errors') for the job page."""
    counts = dict(run.batches.values_list("status").annotate(n=Count("pk")).order_by())
    done = counts.get(GenerationBatch.Status.DONE, 0) + len(writer.pending)
    total = sum(counts.values())
    rate = (done - done_at_start) / max(time.monotonic() - started, 1e-9)
    left = total - done
    eta = f"{left / rate / 60:,.1f} min" if rate > 0 else "unknown"
    failed = counts.get(GenerationBatch.Status.FAILED, 0)
    return done, total, f"{done:,}/{total:,} requests · {rate:,.1f}/s · ETA {eta} · {failed} failed"


def run_job_create(*, run: GenerationRun, created_by=None) -> Job:
    from jobs.services import job_create, job_enqueue

    from .tasks import run_generation_job, run_generation_job_gpu

    gpu = run.teacher.backend == Teacher.Backend.TRANSFORMERS and run.teacher.device != "cpu"
    with transaction.atomic():
        job = job_create(
            kind=GENERATION_JOB,
            params={"run_id": run.pk, "cancellable": True},
            created_by=created_by,
        )
        GenerationRun.objects.filter(pk=run.pk).update(job=job)
        job_enqueue(job=job, task=run_generation_job_gpu if gpu else run_generation_job)
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


def examples_import(*, pool: FewShotPool, lines: list[str]) -> int:
    """Add checked TSV lines (teaching_forms.example_lines) to a pool; how many are new."""
    return pool_import_lines(pool=pool, lines=lines)


def run_start_refusal(run: GenerationRun) -> str | None:
    """Why the run cannot be started now, or None when it can."""
    job = run.job
    if job is not None and job.is_active:
        return f"Run {run.pk} is already under way as job {job.pk} ({job.status})."
    unfinished = run.batches.exclude(status=GenerationBatch.Status.DONE).exists()
    if job is not None and job.status == Job.Status.SUCCEEDED and not unfinished:
        return f"Run {run.pk} is finished: every batch is done."
    return None


def run_start(*, run: GenerationRun, created_by) -> Job:
    """A new job for the run, which continues where it stopped; ValueError when it is
    under way or finished. The run row is locked so that two clicks queue one job."""
    with transaction.atomic():
        run = GenerationRun.objects.select_for_update().get(pk=run.pk)
        refusal = run_start_refusal(run)
        if refusal:
            raise ValueError(refusal)
        return run_job_create(run=run, created_by=created_by)
