"""Student runs: the training data cut, fine-tuning as a resumable job, evaluation into a
corpus of the student's own, and handing that corpus to annotation."""

from __future__ import annotations

import io
import logging
import random
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import orjson
import xxhash
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from corpora.models import Corpus, Relation, Triple
from corpora.services import TripleRow, corpus_empty, tail_key, triples_append
from critic.models import FilterPreset
from jobs.models import Job

from .models import StudentEvaluation, StudentRun

logger = logging.getLogger(__name__)

TRAIN_JOB = "student-train"
EVALUATE_JOB = "student-evaluate"
# How often a running training writes its step, loss and curve to the run's row.
ROW_UPDATE_SECONDS = 3.0


class DistillationError(Exception):
    pass


def artifact_root() -> Path:
    from critic.services.config import artifact_root as critic_artifact_root

    return critic_artifact_root()


def run_folder(run: StudentRun) -> Path:
    return artifact_root() / run.folder


def model_folder(run: StudentRun) -> Path:
    return run_folder(run) / "model"


# --- Runs ------------------------------------------------------------------------


def student_run_create(
    *,
    name: str,
    corpus: Corpus,
    base_model: str,
    preset: FilterPreset | None = None,
    train_split: str = "train",
    val_split: str = "",
    created_by=None,
    **hyperparameters,
) -> StudentRun:
    """Record a run after checking what would make it fail later: the base model loads
    offline, the preset cuts this corpus with the scores it holds, the split has triples."""
    from critic.errors import CriticError
    from critic.services.presets import preset_filter

    from .ml.training import StudentError, detect_architecture

    if preset is not None:
        if preset.corpus_id != corpus.pk:
            raise DistillationError(
                f"Preset '{preset.name}' belongs to corpus '{preset.corpus}', not '{corpus}'."
            )
        try:
            preset_filter(preset=preset)
        except CriticError as exc:
            raise DistillationError(str(exc)) from exc
    if not Triple.objects.filter(corpus=corpus, split=train_split).exists():
        raise DistillationError(f"Corpus '{corpus}' has no triples in split '{train_split}'.")
    try:
        architecture = detect_architecture(base_model)
    except StudentError as exc:
        raise DistillationError(str(exc)) from exc
    run = StudentRun(
        name=name,
        corpus=corpus,
        base_model=base_model,
        architecture=architecture,
        preset=preset,
        critic_version=preset.version if preset else None,
        threshold=preset.threshold if preset else None,
        relation_thresholds=dict(preset.relation_thresholds) if preset else {},
        train_split=train_split,
        val_split=val_split,
        created_by=created_by,
        **hyperparameters,
    )
    run.full_clean()
    run.save()
    run.folder = f"students/run-{run.pk}"
    run.save(update_fields=["folder"])
    return run


def student_run_start(*, run: StudentRun, created_by=None) -> Job:
    """Queue the run's training (on the `gpu` queue unless it is set to the CPU); a run
    that already has a job is started again through that job."""
    from jobs.services import job_create, job_enqueue, job_retry

    from .tasks import run_train_job, run_train_job_gpu

    if run.job_id is not None:
        job = run.job
        if job.is_active:
            return job
        if job.status == Job.Status.SUCCEEDED:
            raise DistillationError(f"Run '{run}' has finished training.")
        return job_retry(job=job)
    with transaction.atomic():
        job = job_create(
            kind=TRAIN_JOB, params={"run_id": run.pk, "cancellable": True}, created_by=created_by
        )
        StudentRun.objects.filter(pk=run.pk).update(job=job)
        job_enqueue(job=job, task=run_train_job if run.device == "cpu" else run_train_job_gpu)
    run.job = job
    return job


def _training_filter(run: StudentRun, split: str):
    from corpora.exporting import ExportFilter

    if run.critic_version_id is None:
        return ExportFilter(split=split)
    return ExportFilter(
        split=split,
        min_score=run.threshold,
        relation_min_scores=tuple(sorted(run.relation_thresholds.items())),
    )


def _snapshot(run: StudentRun, split: str, path: Path) -> int:
    """The rows a run trains (or validates) on, written once as Parquet: a retried job
    trains on exactly the same data."""
    import pyarrow.parquet as pq

    if path.exists():
        return pq.ParquetFile(path).metadata.num_rows
    if run.critic_version_id is not None:
        scoring = getattr(run.corpus, "scoring", None)
        if scoring is None or scoring.version_id != run.critic_version_id:
            raise DistillationError(
                f"Run '{run}' trains on the cut of critic v{run.critic_version.number}, but "
                f"corpus '{run.corpus}' no longer holds that version's scores. Rescore it with "
                "that version, or create the run again from a preset of the active version."
            )
    from corpora.exporting import corpus_export_file

    summary = corpus_export_file(
        corpus=run.corpus, fmt="parquet", out_path=path, flt=_training_filter(run, split)
    )
    return summary.rows


def _student_config(run: StudentRun):
    from .ml.training import StudentConfig

    return StudentConfig(
        base_model=run.base_model,
        epochs=run.epochs,
        learning_rate=run.learning_rate,
        batch_size=run.batch_size,
        grad_accum=run.grad_accum,
        max_length=run.max_length,
        bf16=run.bf16,
        seed=run.seed,
        max_steps=run.max_steps,
        save_every=run.save_every,
        device=run.device,
    )


def student_train(
    *,
    run: StudentRun,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> StudentRun:
    """Train the run; called again after a crash or a cancel it continues from the last
    checkpoint, on the same data snapshot."""
    from .cards import model_card_write
    from .ml.training import StudentError, train_student

    folder = run_folder(run)
    folder.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(0, None, "writing the training data", force=True)
    train_rows = _snapshot(run, run.train_split, folder / "train.parquet")
    if train_rows == 0:
        raise DistillationError(
            f"The cut of corpus '{run.corpus}' keeps no triples in split '{run.train_split}'."
        )
    val_rows = _snapshot(run, run.val_split, folder / "val.parquet") if run.val_split else 0
    StudentRun.objects.filter(pk=run.pk).update(train_examples=train_rows, val_examples=val_rows)
    last_row_update = 0.0

    def on_progress(state) -> None:
        nonlocal last_row_update
        if progress:
            eta = f"ETA {state.eta_seconds / 60:,.1f} min" if state.eta_seconds else "ETA unknown"
            loss = f"loss {state.loss:.3f}" if state.loss is not None else "loss –"
            progress(
                state.step,
                state.total_steps,
                f"step {state.step:,}/{state.total_steps:,} · {loss} · "
                f"{state.tokens_per_second:,.0f} tokens/s · {eta}",
            )
        now = time.monotonic()
        if now - last_row_update >= ROW_UPDATE_SECONDS:
            last_row_update = now
            StudentRun.objects.filter(pk=run.pk).update(
                steps=state.step,
                total_steps=state.total_steps,
                train_loss=state.loss,
                tokens_per_second=state.tokens_per_second,
                loss_history=_history(folder),
            )

    try:
        result = train_student(
            config=_student_config(run),
            train_path=folder / "train.parquet",
            val_path=folder / "val.parquet" if val_rows else None,
            work_dir=folder,
            on_progress=on_progress,
            should_stop=should_stop,
        )
    except StudentError as exc:
        raise DistillationError(str(exc)) from exc
    fields = {
        "architecture": result.architecture,
        "parameters": result.parameters,
        "steps": result.steps,
        "total_steps": result.total_steps,
        "train_loss": result.train_loss,
        "eval_loss": result.eval_loss,
        "tokens": result.tokens,
        "tokens_per_second": result.tokens_per_second,
        "seconds": result.seconds,
        "precision": result.precision,
        "loss_history": [list(point) for point in result.loss_history],
    }
    if not result.stopped:
        fields["finished_at"] = timezone.now()
    StudentRun.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    if run.is_trained:
        model_card_write(run=run)
        # Checkpoints only serve a resume; for GPT-2 XL each holds ~18 GB of optimizer state.
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    return run


def _history(folder: Path) -> list:
    path = folder / "loss_history.json"
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []


def student_train_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    """Train in slices shorter than a task's time limit: when a slice's time is up the run
    saves a checkpoint and the job queues itself again, resuming there (a training of
    GPT-2 XL on millions of triples outlasts any one task)."""
    from jobs.services import job_run, job_send

    next_slice = False

    def body(job: Job, progress) -> dict:
        nonlocal next_slice
        run = StudentRun.objects.get(job=job)
        slice_ends = time.monotonic() + settings.STUDENT_TRAIN_SLICE_SECONDS
        checked = {"at": 0.0, "cancelled": False}

        def should_stop() -> bool:
            # Asked after every optimizer step: look at the job row at most once a second.
            now = time.monotonic()
            if now - checked["at"] >= 1.0:
                checked["at"] = now
                checked["cancelled"] = Job.objects.filter(
                    pk=job.pk, status=Job.Status.CANCELLED
                ).exists()
            return checked["cancelled"] or now >= slice_ends

        run = student_train(run=run, progress=progress, should_stop=should_stop)
        if not run.is_trained and not checked["cancelled"]:
            # Back in the queue (job_run then leaves it there instead of marking it done).
            next_slice = bool(
                Job.objects.filter(
                    pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts
                ).update(status=Job.Status.QUEUED)
            )
        return {
            "run": run.pk,
            "steps": run.steps,
            "train_loss": run.train_loss,
            "eval_loss": run.eval_loss,
            "tokens_per_second": run.tokens_per_second,
            "finished": run.is_trained,
        }

    job = job_run(job_id=job_id, attempt=attempt, body=body)
    if next_slice:
        # Sent only now, so no worker can claim the next slice before this one is recorded;
        # the message is for the next attempt, so no earlier message can start it.
        job_send(job=Job.objects.get(pk=job_id))
    return job


class _Chunks(io.RawIOBase):
    """A write-only stream that hands what was written to a generator (zipfile writes
    data descriptors when it cannot seek, so the zip never touches the disk)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


ARCHIVE_READ_BYTES = 4 << 20


def student_archive_name(run: StudentRun) -> str:
    return f"{run.name}-model.zip"


def student_archive(*, run: StudentRun) -> Iterator[bytes]:
    """The trained model folder as a zip, streamed as it is made (stored, not compressed:
    weights don't shrink), in constant memory whatever the model's size."""
    if not run.is_trained:
        raise DistillationError(f"Run '{run}' has not finished training.")
    source = model_folder(run)
    files = sorted(path for path in source.rglob("*") if path.is_file())

    def chunks() -> Iterator[bytes]:
        sink = _Chunks()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
            for file in files:
                name = str(Path(run.name) / file.relative_to(source))
                large = file.stat().st_size >= zipfile.ZIP64_LIMIT
                with open(file, "rb") as read, archive.open(name, "w", force_zip64=large) as out:
                    while block := read.read(ARCHIVE_READ_BYTES):
                        out.write(block)
                        yield sink.take()
                yield sink.take()
        yield sink.take()

    return chunks()


def student_run_delete(*, run: StudentRun) -> None:
    if run.job_id and run.job.is_active:
        raise DistillationError(f"Run '{run}' is training; cancel it first.")
    folder = run_folder(run) if run.folder else None
    run.delete()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


# --- Evaluation --------------------------------------------------------------------


def evaluation_create(
    *,
    run: StudentRun,
    heads_split: str = "test",
    heads: list[str] | None = None,
    max_heads: int = 200,
    relations: list[Relation] | None = None,
    decoding: str = StudentEvaluation.Decoding.GREEDY,
    n_per_pair: int = 1,
    num_beams: int = 5,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    top_p: float = 0.9,
    seed: int = 0,
    created_by=None,
) -> StudentEvaluation:
    """An evaluation of a trained run and the (empty) corpus its outputs will fill."""
    from corpora.services import corpus_create

    if not run.is_trained:
        raise DistillationError(f"Run '{run}' has not finished training.")
    heads = [h.strip() for h in heads or [] if h.strip()]
    if not heads and not Triple.objects.filter(corpus=run.corpus, split=heads_split).exists():
        raise DistillationError(
            f"Corpus '{run.corpus}' has no triples in split '{heads_split}' to take heads from; "
            "choose another split or give a list of heads."
        )
    if decoding == StudentEvaluation.Decoding.BEAM and num_beams < n_per_pair:
        raise DistillationError("Beam search needs at least as many beams as outputs per pair.")
    with transaction.atomic():
        number = StudentEvaluation.objects.filter(run=run).count() + 1
        name = f"{run.name[:80]} · eval {number}"  # corpus names hold 100 characters
        while Corpus.objects.filter(name=name).exists():
            number += 1
            name = f"{run.name[:80]} · eval {number}"
        corpus = corpus_create(
            name=name,
            description=f"Outputs of student run '{run.name}' ({decoding}).",
            created_by=created_by,
        )
        evaluation = StudentEvaluation(
            run=run,
            corpus=corpus,
            heads_split=heads_split,
            heads="\n".join(heads),
            max_heads=max_heads,
            decoding=decoding,
            n_per_pair=n_per_pair,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            created_by=created_by,
        )
        evaluation.full_clean(exclude=["corpus"])
        evaluation.save()
        if relations:
            evaluation.relations.set(relations)
    return evaluation


def evaluation_start(*, evaluation: StudentEvaluation, created_by=None) -> Job:
    from jobs.services import job_create, job_enqueue, job_retry

    from .tasks import run_evaluate_job, run_evaluate_job_gpu

    if evaluation.job_id is not None:
        job = evaluation.job
        if job.status in (Job.Status.FAILED, Job.Status.CANCELLED):
            return job_retry(job=job)
        return job
    with transaction.atomic():
        job = job_create(
            kind=EVALUATE_JOB, params={"evaluation_id": evaluation.pk}, created_by=created_by
        )
        StudentEvaluation.objects.filter(pk=evaluation.pk).update(job=job)
        gpu = evaluation.run.device != "cpu"
        job_enqueue(job=job, task=run_evaluate_job_gpu if gpu else run_evaluate_job)
    evaluation.job = job
    return job


def _pairs(evaluation: StudentEvaluation) -> tuple[list[tuple[str, str]], dict]:
    """(head, relation) pairs to generate for, and the reference tails of each pair that
    has them in the run's corpus."""
    run = evaluation.run
    wanted = set(evaluation.relations.values_list("name", flat=True))
    train_relations = _training_relations(run)
    relations = sorted(wanted or train_relations)
    references: dict[tuple[str, str], list[str]] = {}
    if evaluation.heads:
        heads = evaluation.heads.splitlines()[: evaluation.max_heads]
        return [(h, r) for h in heads for r in relations], references
    in_split = Triple.objects.filter(
        corpus=run.corpus, split=evaluation.heads_split, relation__name__in=relations
    )
    # Heads first (ids only), then the references of the chosen ones: the split of a
    # big corpus is never loaded whole.
    head_ids = sorted(set(in_split.values_list("head_id", flat=True).iterator(chunk_size=20_000)))
    random.Random(evaluation.seed).shuffle(head_ids)
    rows = in_split.filter(head_id__in=head_ids[: evaluation.max_heads]).values_list(
        "head__text", "relation__name", "tail"
    )
    for head, relation, tail in rows.iterator(chunk_size=5000):
        references.setdefault((head, relation), []).append(tail)
    pairs = sorted(references)
    return pairs, references


def _training_relations(run: StudentRun) -> set[str]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(run_folder(run) / "train.parquet", columns=["relation"])
    return set(pc.unique(table["relation"]).to_pylist())


class _TailHashes:
    """The training tails as a sorted array of 64-bit hashes of their normalized form: set
    membership for novelty in 8 bytes a tail (a Python set of ATOMIC-10X's tails would
    take gigabytes)."""

    def __init__(self, hashes: np.ndarray) -> None:
        self.hashes = np.unique(hashes)

    @staticmethod
    def of(text: str) -> int:
        return xxhash.xxh3_64_intdigest(text.encode())

    def __contains__(self, normalized: str) -> bool:
        key = np.uint64(self.of(normalized))
        at = int(np.searchsorted(self.hashes, key))
        return at < len(self.hashes) and self.hashes[at] == key


def _training_tails(run: StudentRun) -> _TailHashes:
    import pyarrow.parquet as pq

    from corpora.formats import normalize_tail

    parquet = pq.ParquetFile(run_folder(run) / "train.parquet")
    parts = [
        np.fromiter(
            (_TailHashes.of(normalize_tail(t or "")) for t in batch.column(0).to_pylist()),
            dtype=np.uint64,
            count=batch.num_rows,
        )
        for batch in parquet.iter_batches(batch_size=200_000, columns=["tail"])
    ]
    return _TailHashes(np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64))


def _write_outputs(
    evaluation: StudentEvaluation, pairs: list[tuple[str, str]], tails: list[list[str]]
) -> int:
    relation_ids = dict(Relation.objects.values_list("name", "pk"))
    split = "test" if evaluation.heads else evaluation.heads_split
    fields = orjson.dumps({"student_run": evaluation.run_id, "evaluation": evaluation.pk}).decode()
    seen: dict[tuple, tuple[str, str, str]] = {}
    for (head, relation), outputs in zip(pairs, tails, strict=True):
        for tail in outputs:
            seen.setdefault((head, relation, tail_key(tail)), (head, relation, tail))
    rows = [
        TripleRow(head, relation_ids[relation], tail, split=split, fields=fields)
        for head, relation, tail in seen.values()
    ]
    corpus_empty(corpus_id=evaluation.corpus_id)  # a retried job writes its outputs again
    if rows:
        with transaction.atomic():
            triples_append(
                corpus_id=evaluation.corpus_id,
                rows=rows,
                origin=Triple.Origin.STUDENT,
                job_id=evaluation.job_id,
            )
    from corpora.services import corpus_refresh_counts

    corpus_refresh_counts(corpus=evaluation.corpus)
    return len(rows)


def _critic_estimate(evaluation: StudentEvaluation) -> dict | None:
    """The run corpus's active critic on the student's outputs: mean calibrated
    probability (expected acceptance) with a 95% interval, and the share its preset's
    threshold would keep, overall and by relation. Each output's score is kept as the
    output corpus's score set, so its pages (table, a triple's lineage) show it."""
    from corpora.scores import ScoreSetWriter
    from critic.corpus_data import corpus_chunks, relation_verbalizations
    from critic.models import CriticVersion
    from critic.services.loading import critic_load

    version = CriticVersion.objects.filter(corpus=evaluation.run.corpus, is_active=True).first()
    if version is None:
        return None
    critic = critic_load(version)
    verbalizations = relation_verbalizations()
    names = {rel_id: name for rel_id, (name, _) in verbalizations.items()}
    scores, relations = [], []
    writer = ScoreSetWriter(evaluation.corpus_id)
    try:
        for chunk in corpus_chunks(corpus_id=evaluation.corpus_id, chunk_size=20_000):
            scores.append(np.asarray(critic.score(chunk, verbalizations), dtype=np.float64))
            relations.extend(names.get(int(r), str(r)) for r in chunk.relation_ids)
            writer.write(chunk.ids, scores[-1])
    except BaseException:
        writer.discard()
        raise
    if not scores:
        writer.discard()
        return None
    writer.commit()
    scores_all = np.concatenate(scores)
    relations_all = np.array(relations)
    run = evaluation.run
    kept = None
    if run.threshold is not None:
        cut_of = {name: run.relation_thresholds.get(name, run.threshold) for name in set(relations)}
        kept = scores_all >= np.array([cut_of[name] for name in relations])

    def summary(mask: np.ndarray) -> dict:
        chosen = scores_all[mask]
        mean = float(chosen.mean())
        half = 1.96 * float(chosen.std(ddof=1)) / np.sqrt(len(chosen)) if len(chosen) > 1 else None
        return {
            "n": int(len(chosen)),
            "acceptance": mean,
            "low": max(0.0, mean - half) if half is not None else None,
            "high": min(1.0, mean + half) if half is not None else None,
            "kept_share": float(kept[mask].mean()) if kept is not None else None,
        }

    return {
        "version": version.number,
        "overall": summary(np.ones(len(scores_all), dtype=bool)),
        "relations": {name: summary(relations_all == name) for name in sorted(set(relations))},
    }


def evaluation_execute(*, evaluation: StudentEvaluation, progress=None) -> StudentEvaluation:
    """Generate, write the outputs as a corpus and measure them. Idempotent: a retry
    replaces the outputs of an earlier attempt."""
    from .ml import measures
    from .ml.generating import generate_tails

    run = evaluation.run
    pairs, references = _pairs(evaluation)
    if not pairs:
        raise DistillationError(f"Evaluation {evaluation.pk} found no (head, relation) pairs.")
    StudentEvaluation.objects.filter(pk=evaluation.pk).update(pairs=len(pairs))
    if progress:
        progress(0, len(pairs), "generating", force=True)
    result = generate_tails(
        model_dir=model_folder(run),
        pairs=pairs,
        decoding=evaluation.decoding,
        n=evaluation.n_per_pair,
        num_beams=evaluation.num_beams,
        max_new_tokens=evaluation.max_new_tokens,
        device=run.device,
        seed=evaluation.seed,
        temperature=evaluation.temperature,
        top_p=evaluation.top_p,
        on_progress=(lambda done, total: progress(done, total, "generating")) if progress else None,
    )
    written = _write_outputs(evaluation, pairs, result.tails)
    if progress:
        progress(len(pairs), len(pairs), "measuring", force=True)
    training = _training_tails(run)
    by_relation: dict[str, list[int]] = {}
    for index, (_, relation) in enumerate(pairs):
        by_relation.setdefault(relation, []).append(index)

    def measure(indexes: list[int]) -> dict:
        outputs = [tail for i in indexes for tail in result.tails[i]]
        scored = [i for i in indexes if pairs[i] in references and result.tails[i]]
        hypotheses = [result.tails[i][0] for i in scored]
        refs = [references[pairs[i]] for i in scored]
        return {
            "pairs": len(indexes),
            "outputs": len(outputs),
            "distinct_1": measures.distinct_n(outputs, 1),
            "distinct_2": measures.distinct_n(outputs, 2),
            "novelty": measures.novelty(outputs, training) if outputs else None,
            "bleu": measures.bleu(hypotheses, refs) if hypotheses else None,
            "rouge_l": measures.rouge_l(hypotheses, refs) if hypotheses else None,
            "with_references": len(scored),
        }

    metrics = {
        "overall": measure(list(range(len(pairs)))),
        "relations": {name: measure(idx) for name, idx in sorted(by_relation.items())},
        "written": written,
        "new_tokens": result.new_tokens,
        "seconds": round(result.seconds, 2),
        "tokens_per_second": result.new_tokens / result.seconds if result.seconds else None,
        "critic": _critic_estimate(evaluation),
    }
    StudentEvaluation.objects.filter(pk=evaluation.pk).update(metrics=metrics)
    evaluation.refresh_from_db()
    return evaluation


def evaluation_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    from jobs.services import job_run

    def body(job: Job, progress) -> dict:
        evaluation = StudentEvaluation.objects.get(job=job)
        evaluation = evaluation_execute(evaluation=evaluation, progress=progress)
        overall = evaluation.metrics["overall"]
        critic = evaluation.metrics.get("critic") or {}
        return {
            "evaluation": evaluation.pk,
            "corpus_id": evaluation.corpus_id,
            "outputs": evaluation.metrics["written"],
            "distinct_2": overall["distinct_2"],
            "critic_acceptance": (critic.get("overall") or {}).get("acceptance"),
        }

    return job_run(job_id=job_id, attempt=attempt, body=body)


def evaluation_send_to_annotation(
    *,
    evaluation: StudentEvaluation,
    size: int | None = None,
    judgments_per_item: int = 3,
    gold_share: float = 0.0,
    created_by=None,
):
    """A campaign over the student's outputs, so people judge them as they judged the
    teacher's. Sending twice returns the same campaign."""
    from annotation.models import Campaign
    from annotation.services.campaigns import campaign_create

    if evaluation.campaign_id is not None:
        return evaluation.campaign
    corpus = evaluation.corpus
    corpus.refresh_from_db()
    if corpus.triple_count == 0:
        raise DistillationError(f"Evaluation {evaluation.pk} has no outputs yet.")
    name = f"Judge {corpus.name}"[:88]  # campaign names hold 100 characters
    if Campaign.objects.filter(name=name).exists():
        name = f"{name} #{evaluation.pk}"
    with transaction.atomic():
        StudentEvaluation.objects.select_for_update().filter(pk=evaluation.pk).first()
        evaluation.refresh_from_db()
        if evaluation.campaign_id is not None:
            return evaluation.campaign
        campaign = campaign_create(
            corpus=corpus,
            name=name,
            size=min(size or corpus.triple_count, corpus.triple_count),
            sampling=Campaign.Sampling.RELATION,
            purpose=Campaign.Purpose.AUDIT,
            judgments_per_item=judgments_per_item,
            gold_share=gold_share,
            instructions=f"Triples written by the student model of run '{evaluation.run.name}'.",
            created_by=created_by,
        )
        StudentEvaluation.objects.filter(pk=evaluation.pk).update(campaign=campaign)
    evaluation.campaign = campaign
    return campaign
