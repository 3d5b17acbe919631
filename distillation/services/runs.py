"""Student runs: recorded after checking what would make them fail later, queued for
training (on the `gpu` queue unless set to the CPU), deleted with their files.
"""

from __future__ import annotations

import shutil

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from corpora.models import Corpus, Triple
from critic.models import FilterPreset
from jobs.models import Job

from ..errors import DistillationError
from ..folders import run_folder, run_folder_name
from ..limits import run_settings_check
from ..models import StudentRun

TRAIN_JOB = "distillation.train"


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

    from ..ml.base_model import detect_architecture
    from ..ml.errors import StudentError

    run_settings_check(name=name, base_model=base_model, train_split=train_split, **hyperparameters)
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
    try:
        run.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise DistillationError(messages[0], field=field) from None
    run.folder = run_folder_name(run)
    run.save()
    return run


def student_run_start(*, run: StudentRun, created_by=None) -> Job:
    """Queue the run's training (on the `gpu` queue unless it is set to the CPU); a run
    that already has a job is started again through that job."""
    from jobs.services import job_create, job_enqueue, job_retry

    from ..tasks import run_train_job

    if run.job_id is not None:
        job = run.job
        if job.is_active:
            return job
        if job.status == Job.Status.SUCCEEDED:
            raise DistillationError(f"Run '{run}' has finished training.")
        return job_retry(job=job)
    with transaction.atomic():
        job = job_create(
            kind=TRAIN_JOB,
            params={"run_id": run.pk, "cancellable": True},
            created_by=created_by,
            title=f"Training student {run}",
            subject_url=reverse("distillation:run_detail", args=[run.pk]),
            subject_label=str(run),
        )
        StudentRun.objects.filter(pk=run.pk).update(job=job)
        job_enqueue(job=job, task=run_train_job, queue=None if run.device == "cpu" else "gpu")
    run.job = job
    return job


def student_run_delete(*, run: StudentRun) -> None:
    if run.job_id and run.job.is_active:
        raise DistillationError(f"Run '{run}' is training; cancel it first.")
    folder = run_folder(run) if run.folder else None
    run.delete()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
