"""Writes for teachers, few-shot pools and generation runs (the services of this part).

A run is split into batches keyed by (head, relation), or one per event prompt. Executing a
run sends the pending batches to the teacher and, as answers arrive, writes each batch's
cleaned triples and marks it done in the same transaction: a run that crashes or is
restarted continues with what is still pending and never writes a batch twice.

One process at a time executes a run: it holds the run's lease (owner host:pid:uuid, taken
with a conditional UPDATE and kept alive by a heartbeat), so a second start is refused and
no request is sent twice. A run stops by itself after the teacher's ``give_up_after``
batches in a row failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import orjson
from django.db import transaction
from django.db.models import Count, F
from django.urls import reverse
from django.utils import timezone

from corpora.models import Corpus, Event, Relation, Triple
from corpora.selectors import triple_keys_held
from corpora.services import TripleRow, corpus_write_turn, tail_key, triples_append
from jobs.models import Job

from .limits import run_settings_check
from .ml.http_teacher import Completion, CompletionRequest, OpenAICompatibleTeacher, TeacherError
from .ml.prompts import (
    MAX_EVENT_WORDS,
    clean_outputs,
    event_prompt,
    inference_prompt,
    parse_numbered_list,
    prompt_hash,
)
from .models import FewShotExample, FewShotPool, GenerationBatch, GenerationRun, Teacher

EVENT_BATCH_PREFIX = "#events "
WINDOW = 5_000  # pending batches fetched per round
FLUSH_EVERY = 50  # answers written per transaction
ANSWERS_QUEUED = 64  # answers (cleaned, so small) waiting for the writer, at most
QUIET_POLL = 1.0  # seconds without an answer before the loop beats and checks anyway
LEASE_BEAT_EVERY = 5.0  # seconds between heartbeats of a run's lease
# A lease whose heartbeat is older than this is taken over (its holder died without letting
# go); one held by a process of this host that is gone is taken over at once.
LEASE_STALE_AFTER = 120.0
GENERATION_JOB = "generation_run"

logger = logging.getLogger(__name__)


class RunBusy(ValueError):
    """Another process executes the run (or took it over from this one)."""


# --- Teachers -----------------------------------------------------------------------------


def teacher_create(*, check: bool = False, **fields) -> Teacher:
    """Save a teacher; with ``check``, only once teacher_check passed (TeacherError else)."""
    for price in ("prompt_price_per_1k", "completion_price_per_1k"):
        if isinstance(fields.get(price), float):  # 0.15 as a float is not 0.15 exactly
            fields[price] = Decimal(str(fields[price]))
    teacher = Teacher(**fields)
    teacher.full_clean()
    if check:
        teacher_check(teacher)
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
            timeout=teacher.timeout,
            max_answer_bytes=teacher.max_answer_bytes,
        )
    from .ml.local_teacher import TransformersTeacher

    return TransformersTeacher(
        teacher.model, device=teacher.device or None, dtype=teacher.dtype or "auto"
    )


def teacher_check(teacher: Teacher) -> str:
    """Fail before any work when the teacher cannot work; say what was checked.

    An HTTP teacher must answer one real request of its endpoint and model (a completion of
    one token): a wrong key, base URL or model name fails here. A transformers teacher's
    tokenizer and config must load (its weights are left to the worker that runs it)."""
    if teacher.backend == Teacher.Backend.TRANSFORMERS:
        from .ml.local_check import local_model_check

        try:
            found = local_model_check(teacher.model)
        except TeacherError as exc:
            raise TeacherError(f"Teacher '{teacher.name}': {exc}") from exc
        return (
            f"Teacher {teacher.name}: {found}. Its weights are loaded by the worker when a run "
            "starts."
        )
    backend = teacher_backend(teacher)
    try:
        backend.check_sync()
    except TeacherError as exc:
        raise TeacherError(f"Teacher '{teacher.name}': {exc}") from exc
    return (
        f"Teacher {teacher.name} answered a test completion of model '{teacher.model}' at "
        f"{backend._url()}."
    )


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


@dataclass
class _Answer:
    """What the writer needs of one answer: cleaned already, so that answers waiting to be
    written stay small whatever the teacher sent."""

    batch_id: int
    head: str
    relation_id: int | None
    digest: str
    error: str = ""  # a failed batch's reason
    texts: list[str] = field(default_factory=list)  # cleaned tails, or new events
    logprobs: list[float | None] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0


def _answer(request: CompletionRequest, result: Completion | TeacherError) -> _Answer:
    batch_id, head, relation_id, digest = request.key
    answer = _Answer(batch_id, head, relation_id, digest)
    if isinstance(result, TeacherError):
        answer.error = str(result)[:2000] or result.__class__.__name__
        return answer
    if relation_id is None:
        items = parse_numbered_list(result.texts[0]) if result.texts else []
        cleaned = clean_outputs(items, max_words=MAX_EVENT_WORDS)
        answer.logprobs = [None] * len(cleaned.kept)
    else:
        cleaned = clean_outputs(result.texts, head=head)
        given = result.logprobs
        answer.logprobs = [given[i] if i < len(given) else None for i in cleaned.kept_index]
    answer.texts, answer.dropped = cleaned.kept, cleaned.dropped
    answer.prompt_tokens, answer.completion_tokens = result.prompt_tokens, result.completion_tokens
    answer.attempts = result.attempts
    return answer


def _answers(
    backend, requests: list[CompletionRequest], stop: threading.Event
) -> Iterator[_Answer | None]:
    """Run the backend in a thread of its own and hand its answers, cleaned, to this thread,
    where Django's connection lives. At most ANSWERS_QUEUED wait: a teacher faster than the
    writer waits for it. None now and then when the teacher is quiet, so that the caller
    still beats its heart and checks for a cancel."""
    answers: queue.Queue = queue.Queue(maxsize=ANSWERS_QUEUED)
    done = object()
    failure: list[BaseException] = []
    left = threading.Event()  # the caller is gone: nobody takes answers any more

    def deliver(item: object) -> None:
        while not left.is_set():
            with contextlib.suppress(queue.Full):
                answers.put(item, timeout=0.5)
                return

    def prepared(request: CompletionRequest, result: Completion | TeacherError) -> _Answer:
        try:
            return _answer(request, result)
        except Exception as exc:  # noqa: BLE001 - one answer's failure, not the run's
            logger.exception("answer to batch %s could not be read", request.key[0])
            return _answer(request, TeacherError(f"answer could not be read: {exc!r}"))

    def on_result(request, result):
        item = prepared(request, result)
        with contextlib.suppress(queue.Full):
            answers.put_nowait(item)
            return None
        if isinstance(backend, OpenAICompatibleTeacher):
            # Waiting for room must not block the client's event loop.
            return asyncio.get_running_loop().run_in_executor(None, deliver, item)
        deliver(item)
        return None

    def work() -> None:
        try:
            backend.run_sync(requests, on_result, should_stop=stop.is_set)
        except BaseException as exc:  # handed to the caller
            failure.append(exc)
        finally:
            deliver(done)

    thread = threading.Thread(target=work, name="teacher", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = answers.get(timeout=QUIET_POLL)
            except queue.Empty:
                yield None
                continue
            if item is done:
                break
            yield item
    except GeneratorExit:  # the caller failed: stop the teacher, let go of its answers
        stop.set()
        left.set()
        raise
    thread.join()
    if failure:
        raise failure[0]


# --- The lease: one executor per run ------------------------------------------------------


def _lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _lease_gone(owner: str, heartbeat_at, now) -> bool:
    """Whether a lease's holder is dead: no heartbeat for LEASE_STALE_AFTER, or a process
    of this host that no longer exists."""
    if heartbeat_at is None or now - heartbeat_at > timedelta(seconds=LEASE_STALE_AFTER):
        return True
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _lease_words(run_id: int, owner: str, taken_at, heartbeat_at, now) -> str:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    since = timezone.localtime(taken_at).strftime("%Y-%m-%d %H:%M:%S %Z") if taken_at else "?"
    beat = f"{(now - heartbeat_at).total_seconds():.0f} s ago" if heartbeat_at else "never"
    return (
        f"Run {run_id} is being executed by process {pid} on {host} since {since} (last "
        f"heartbeat {beat}). It can be started again once that process ends; a run whose "
        f"heartbeat is older than {LEASE_STALE_AFTER:g} s is taken over."
    )


def run_lease_holder(run: GenerationRun) -> str | None:
    """Who executes the run now, in words; None when nobody (or a dead process) does."""
    row = (
        GenerationRun.objects.filter(pk=run.pk)
        .values("lease_owner", "lease_taken_at", "lease_heartbeat_at")
        .first()
    )
    now = timezone.now()
    if not row or not row["lease_owner"]:
        return None
    if _lease_gone(row["lease_owner"], row["lease_heartbeat_at"], now):
        return None
    return _lease_words(
        run.pk, row["lease_owner"], row["lease_taken_at"], row["lease_heartbeat_at"], now
    )


def run_lease_take(*, run: GenerationRun) -> str:
    """Claim the run for this process with a conditional UPDATE (free, or its holder dead);
    the owner id to beat and release it with. RunBusy names the live holder."""
    owner = _lease_owner()
    runs = GenerationRun.objects.filter(pk=run.pk)
    for _ in range(3):  # the holder may let go or be taken over between the two reads
        now = timezone.now()
        taken = {"lease_owner": owner, "lease_taken_at": now, "lease_heartbeat_at": now}
        if runs.filter(lease_owner="").update(**taken):
            return owner
        row = runs.values("lease_owner", "lease_taken_at", "lease_heartbeat_at").first()
        if row is None:
            raise GenerationRun.DoesNotExist(f"no generation run {run.pk}")
        holder = row["lease_owner"]
        if not holder:
            continue
        if _lease_gone(holder, row["lease_heartbeat_at"], now):
            if runs.filter(lease_owner=holder).update(**taken):
                logger.warning("run %s: took over the lease of %s, gone", run.pk, holder)
                return owner
            continue
        raise RunBusy(
            _lease_words(run.pk, holder, row["lease_taken_at"], row["lease_heartbeat_at"], now)
        )
    raise RunBusy(f"Run {run.pk}: its lease changed hands while this process tried to take it.")


def _lease_beat(run_id: int, owner: str) -> None:
    """Heartbeat; RunBusy when the lease was taken over (this process must stop writing)."""
    beaten = GenerationRun.objects.filter(pk=run_id, lease_owner=owner).update(
        lease_heartbeat_at=timezone.now()
    )
    if not beaten:
        raise RunBusy(
            f"Run {run_id}: this process ({owner}) lost its lease, taken over by another after "
            "its heartbeat went quiet; it stops without writing more."
        )


def _lease_release(run_id: int, owner: str) -> None:
    GenerationRun.objects.filter(pk=run_id, lease_owner=owner).update(
        lease_owner="", lease_taken_at=None, lease_heartbeat_at=None
    )


# --- Writing answers ----------------------------------------------------------------------


class _Writer:
    """Writes answers in groups: triples, new events' batches, batch states and run totals
    in one transaction per group, under the run's lease. Only batches still pending are
    written; counts are added to the row's (never written from a copy), and the triples
    counted are the rows the corpus did not hold yet."""

    def __init__(self, run: GenerationRun, owner: str) -> None:
        self.run = run
        self.owner = owner
        self.pending: list[_Answer] = []
        self.relations = list(run.relations.values_list("id", flat=True))
        self.batches_added = 0

    def add(self, answer: _Answer) -> None:
        self.pending.append(answer)
        if len(self.pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        run = self.run
        # Writers into one corpus take turns (PostgreSQL), so the rows found held before
        # the merge are the rows held when it runs: the count of new rows is exact.
        with transaction.atomic(), corpus_write_turn(run.corpus_id):
            _lease_beat(run.pk, self.owner)
            # Only batches still pending are written (their attempts read under the lease:
            # only its holder writes batches).
            still = dict(
                GenerationBatch.objects.filter(
                    pk__in=[a.batch_id for a in self.pending],
                    status=GenerationBatch.Status.PENDING,
                ).values_list("pk", "attempts")
            )
            answers = [a for a in self.pending if a.batch_id in still]
            done = [a for a in answers if not a.error]
            failed = [a for a in answers if a.error]
            dropped: Counter = Counter()
            for answer in done:
                dropped.update(answer.dropped)
            new_rows = self._write_triples(done, dropped)
            events = self._add_events(done, dropped)
            batches = GenerationBatch.objects
            for a in answers:
                batches.filter(pk=a.batch_id).update(
                    status=GenerationBatch.Status.FAILED
                    if a.error
                    else GenerationBatch.Status.DONE,
                    attempts=still[a.batch_id] + a.attempts,
                    prompt_hash=a.digest,
                    kept=new_rows[a.batch_id] if a.relation_id is not None else len(a.texts),
                    error=a.error,
                )
            # Read under the lease's row lock (taken by the heartbeat above): added to, not
            # overwritten from this process's copy.
            totals = Counter(
                GenerationRun.objects.filter(pk=run.pk).values_list("dropped", flat=True).get()
            )
            totals.update(dropped)
            GenerationRun.objects.filter(pk=run.pk).update(
                requests_done=F("requests_done") + len(done),
                prompt_tokens=F("prompt_tokens") + sum(a.prompt_tokens for a in done),
                completion_tokens=F("completion_tokens") + sum(a.completion_tokens for a in done),
                triples_written=F("triples_written") + sum(new_rows.values()),
                events_written=F("events_written") + events,
                errors=F("errors") + len(failed),
                dropped=dict(totals),
            )
        self.pending.clear()

    def _write_triples(self, done: list[_Answer], dropped: Counter) -> Counter:
        """Merge the answers' tails into the corpus; the new rows per batch (a tail the
        corpus holds already only counts one more occurrence)."""
        run = self.run
        rows: dict[tuple[str, int, int], tuple[int, str, str]] = {}
        for answer in done:
            if answer.relation_id is None:
                continue
            for text, logprob in zip(answer.texts, answer.logprobs, strict=True):
                key = (answer.head, answer.relation_id, tail_key(text))
                if key in rows:  # cleaning keeps one per key; a hash collision, at most
                    dropped["duplicate"] += 1
                    continue
                provenance = {
                    "run": run.pk,
                    "teacher": run.teacher.name,
                    "prompt": answer.digest,
                    "logprob": logprob,
                }
                rows[key] = (answer.batch_id, text, orjson.dumps(provenance).decode())
        new_rows: Counter = Counter()
        if not rows:
            return new_rows
        held = triple_keys_held(corpus_id=run.corpus_id, keys=set(rows))
        for key, (batch_id, _, _) in rows.items():
            if key in held:
                dropped["already in the corpus"] += 1
            else:
                new_rows[batch_id] += 1
        triples_append(
            corpus_id=run.corpus_id,
            rows=[
                TripleRow(head, relation, text, fields=fields)
                for (head, relation, _), (_, text, fields) in rows.items()
            ],
            origin=Triple.Origin.TEACHER,
            job_id=run.job_id,
        )
        return new_rows

    def _add_events(self, done: list[_Answer], dropped: Counter) -> int:
        """Batches for the new events of event prompts; how many events are new."""
        new_events: dict[str, None] = {}
        for answer in done:
            if answer.relation_id is None:
                for event in answer.texts:
                    if event in new_events:
                        dropped["duplicate"] += 1
                    new_events[event] = None
        if not new_events:
            return 0
        # Events the run already has (from an earlier prompt) are duplicates.
        known = set(
            GenerationBatch.objects.filter(
                run=self.run, head__in=list(new_events), relation__isnull=False
            ).values_list("head", flat=True)
        )
        fresh = [event for event in new_events if event not in known]
        dropped["duplicate"] += len(new_events) - len(fresh)
        GenerationBatch.objects.bulk_create(
            [
                GenerationBatch(run=self.run, head=event, relation_id=relation)
                for event in fresh
                for relation in self.relations
            ],
            ignore_conflicts=True,
            batch_size=5000,
        )
        self.batches_added += len(fresh) * len(self.relations)
        return len(fresh)


# --- Executing a run ----------------------------------------------------------------------


class _Progress:
    """Done and total batches, rate and time left, from counts kept as answers arrive."""

    def __init__(self, run: GenerationRun) -> None:
        counts = dict(run.batches.values_list("status").annotate(n=Count("pk")).order_by())
        self.total = sum(counts.values())
        self.done = counts.get(GenerationBatch.Status.DONE, 0)
        self.failed = 0
        self.answered = 0
        self.started = time.monotonic()

    def count(self, answer: _Answer) -> None:
        self.answered += 1
        if answer.error:
            self.failed += 1
        else:
            self.done += 1

    def line(self, writer: _Writer) -> tuple[int, int, str]:
        total = self.total + writer.batches_added
        rate = self.answered / max(time.monotonic() - self.started, 1e-9)
        left = total - self.done - self.failed
        eta = _duration(left / rate) if rate > 0 else "unknown"
        return (
            self.done,
            total,
            f"{self.done:,} of {total:,} batches done · {rate:,.1f} a second · {eta} left"
            f" · {self.failed:,} failed",
        )


def _duration(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    if seconds < 3600:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def run_execute(
    *,
    run: GenerationRun,
    progress: Callable[[int, int | None, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    check_every: float = 1.0,
    check: bool = True,
) -> GenerationRun:
    """Send every pending (or earlier failed) batch and write the answers. Safe to call
    again after a crash or a cancel: done batches are never sent again. ``should_stop`` (a
    cancel) and ``progress`` are called at most every ``check_every`` seconds.

    RunBusy when another process executes the run. The teacher is checked first (unless
    ``check`` is false: the caller just did); TeacherError when it fails, or when the run
    stopped because ``give_up_after`` batches in a row failed (what was answered is
    written; the rest stays pending for a later start)."""
    from corpora.services import corpus_refresh_counts

    owner = run_lease_take(run=run)
    try:
        backend = teacher_backend(run.teacher)  # a transformers teacher loads its model here
        if check and run.teacher.backend == Teacher.Backend.OPENAI:
            try:
                backend.check_sync()
            except TeacherError as exc:
                raise TeacherError(f"Teacher '{run.teacher.name}': {exc}") from exc
        _lease_beat(run.pk, owner)
        run.batches.filter(status=GenerationBatch.Status.FAILED).update(
            status=GenerationBatch.Status.PENDING
        )
        gave_up = _execute(run, backend, owner, progress, should_stop, check_every)
        corpus_refresh_counts(corpus=run.corpus)
    finally:
        _lease_release(run.pk, owner)
    run.refresh_from_db()
    if gave_up:
        raise TeacherError(gave_up)
    return run


def _execute(run, backend, owner, progress, should_stop, check_every) -> str | None:
    """The loop of run_execute; the message of a give-up, or None."""
    writer = _Writer(run, owner)
    tracker = _Progress(run)
    stop = threading.Event()
    give_up = run.teacher.give_up_after
    streak, gave_up = 0, None
    last_check, last_beat = 0.0, time.monotonic()
    try:
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
                    writer.add(answer)
                    tracker.count(answer)
                    streak = streak + 1 if answer.error else 0
                    if give_up and streak >= give_up and gave_up is None:
                        stop.set()
                        gave_up = (
                            f"Run {run.pk} stopped: {streak} batches in a row failed (the "
                            f"teacher gives up after {give_up}); the last said: "
                            f"{answer.error.rstrip('.')}."
                        )
                now = time.monotonic()
                if now - last_check >= check_every:
                    last_check = now
                    if should_stop is not None and should_stop():
                        stop.set()
                    if progress is not None:
                        progress(*tracker.line(writer))
                if now - last_beat >= LEASE_BEAT_EVERY:
                    last_beat = now
                    _lease_beat(run.pk, owner)
            writer.flush()
    except BaseException:
        stop.set()
        with contextlib.suppress(Exception):  # keep what was answered, if the lease allows
            writer.flush()
        raise
    if gave_up:
        left = run.batches.exclude(status=GenerationBatch.Status.DONE).count()
        gave_up += f" {left:,} batches are left for when the teacher answers again."
    return gave_up


def run_job_create(*, run: GenerationRun, created_by=None) -> Job:
    from jobs.services import job_create, job_enqueue

    from .tasks import run_generation_job, run_generation_job_gpu

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


def examples_import(*, pool: FewShotPool, lines: list[str]) -> int:
    """Add checked TSV lines (teaching_forms.example_lines) to a pool; how many are new."""
    return pool_import_lines(pool=pool, lines=lines)


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
    """A new job for the run, which continues where it stopped; ValueError when it is
    under way or finished. The run row is locked so that two clicks queue one job."""
    with transaction.atomic():
        run = GenerationRun.objects.select_for_update().get(pk=run.pk)
        refusal = run_start_refusal(run)
        if refusal:
            raise ValueError(refusal)
        return run_job_create(run=run, created_by=created_by)
