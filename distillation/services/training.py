"""Training a student run: the data cut written once as Parquet (a retried job trains on
the same rows), fine-tuning through `distillation.ml.training`, and the training job,
run in slices shorter than a task's time limit, each resuming from the last checkpoint.
On a host with several GPUs (or with STUDENT_TRAIN_PROCESSES set) the job trains through
`distillation.ml.parallel`: torchrun as a child process, one process per GPU.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from django.conf import settings
from django.utils import timezone

from jobs.models import Job

from ..errors import DistillationError
from ..folders import model_checksum, run_folder
from ..models import StudentRun

# How often a running training writes its step, loss and curve to the run's row.
ROW_UPDATE_SECONDS = 3.0


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
    from ..ml.training import StudentConfig

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
    from ..cards import model_card_write
    from ..ml.errors import StudentError
    from ..ml.parallel import processes_for, train_student_processes
    from ..ml.training import train_student

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
    processes = processes_for(run.device, settings.STUDENT_TRAIN_PROCESSES)
    last_row_update = 0.0
    where = f" · {processes} processes" if processes > 1 else ""
    last_report = [0, None, f"starting {processes} training processes"]

    def on_progress(state) -> None:
        nonlocal last_row_update
        if progress:
            eta = f"ETA {state.eta_seconds / 60:,.1f} min" if state.eta_seconds else "ETA unknown"
            loss = f"loss {state.loss:.3f}" if state.loss is not None else "loss –"
            last_report[:] = [
                state.step,
                state.total_steps,
                f"step {state.step:,}/{state.total_steps:,} · {loss} · "
                f"{state.tokens_per_second:,.0f} tokens/s{where} · {eta}",
            ]
            progress(*last_report)
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

    training = dict(
        config=_student_config(run),
        train_path=folder / "train.parquet",
        val_path=folder / "val.parquet" if val_rows else None,
        work_dir=folder,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    try:
        if processes > 1:
            # The job's heartbeat goes on while the processes load the model, evaluate, save.
            result = train_student_processes(
                **training,
                processes=processes,
                heartbeat=(lambda: progress(*last_report)) if progress else None,
            )
        else:
            result = train_student(**training)
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
        run.checksum = model_checksum(run)
        StudentRun.objects.filter(pk=run.pk).update(checksum=run.checksum)
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

    from ..ml.parallel import processes_for

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
            "processes": processes_for(run.device, settings.STUDENT_TRAIN_PROCESSES),
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
