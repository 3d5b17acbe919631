"""Writes for teachers, few-shot pools and generation runs (the services of this part).

A run is split into batches keyed by (head, relation), or one per event prompt. Executing a
run sends the pending batches to the teacher and, as answers arrive, writes each batch's
cleaned triples and marks it done in the same transaction: a run that crashes or is
restarted continues with what is still pending and never writes a batch twice.

One process at a time executes a run: it holds the run's lease (owner host:pid:uuid, taken
with a conditional UPDATE and kept alive by a heartbeat), so a second start is refused and
no request is sent twice. A run stops by itself after the teacher's ``give_up_after``
batches in a row failed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson
from django.db import transaction
from django.db.models import Count, F

from corpora.models import Relation, Triple
from corpora.selectors import triple_keys_held
from corpora.services import TripleRow, corpus_write_turn, tail_key, triples_append

from ..ml.http_teacher import Completion, CompletionRequest, OpenAICompatibleTeacher, TeacherError
from ..ml.prompts import (
    MAX_EVENT_WORDS,
    clean_outputs,
    event_prompt,
    inference_prompt,
    parse_numbered_list,
    prompt_hash,
)
from ..models import FewShotPool, GenerationBatch, GenerationRun, Teacher
from .leases import LEASE_BEAT_EVERY, run_lease_beat, run_lease_release, run_lease_take
from .teachers import teacher_backend

EVENT_BATCH_PREFIX = "#events "
WINDOW = 5_000  # pending batches fetched per round
FLUSH_EVERY = 50  # answers written per transaction
ANSWERS_QUEUED = 64  # answers (cleaned, so small) waiting for the writer, at most
QUIET_POLL = 1.0  # seconds without an answer before the loop beats and checks anyway

logger = logging.getLogger(__name__)


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
            run_lease_beat(run.pk, self.owner)
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
        run_lease_beat(run.pk, owner)
        run.batches.filter(status=GenerationBatch.Status.FAILED).update(
            status=GenerationBatch.Status.PENDING
        )
        gave_up = _execute(run, backend, owner, progress, should_stop, check_every)
        corpus_refresh_counts(corpus=run.corpus)
    finally:
        run_lease_release(run.pk, owner)
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
                    run_lease_beat(run.pk, owner)
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
