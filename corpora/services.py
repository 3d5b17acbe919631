"""Writes to corpora and relations. Imports and exports live in importing/ and
exporting.py; these are the entry points that the pages, the API and the CLI call."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils.text import get_valid_filename, slugify

from jobs.models import Job
from jobs.services import job_create, job_enqueue, job_run, job_subject_set

from .bulk import corpus_counts, corpus_delete_triples, corpus_drop_triples, make_loader
from .exporting import ExportFilter, ExportSummary, corpus_export_file
from .importing import ImportSummary, StageBlock, corpus_import_file, tail_key
from .importing.turns import _import_turn
from .limits import import_settings_check
from .models import Corpus, Relation

IMPORT_JOB = "corpora.import"
EXPORT_JOB = "corpora.export"


@dataclass(frozen=True)
class CorpusTotals:
    triples: int
    occurrences: int


def corpus_refresh_counts(
    *, corpus: Corpus, counts: list[tuple[int, str, int, int]] | None = None
) -> CorpusTotals:
    """Recount a corpus by relation and split (or take `counts`, as corpus_counts gives
    them) and store the counts on it."""
    names = dict(Relation.objects.values_list("id", "name"))
    by_relation: dict[str, dict[str, int]] = {}
    by_split: dict[str, int] = {}
    triples = occurrences = 0
    for relation_id, split, count, occ in (
        counts if counts is not None else corpus_counts(corpus.pk)
    ):
        name = names.get(relation_id, str(relation_id))
        by_relation.setdefault(name, {})[split] = count
        by_split[split] = by_split.get(split, 0) + count
        triples += count
        occurrences += occ
    stats = {"by_relation": by_relation, "by_split": by_split}
    Corpus.objects.filter(pk=corpus.pk).update(
        triple_count=triples, occurrence_count=occurrences, stats=stats
    )
    corpus.triple_count, corpus.occurrence_count, corpus.stats = triples, occurrences, stats
    return CorpusTotals(triples=triples, occurrences=occurrences)


# --- Appending triples from code (teacher runs, student evaluations) ---


@dataclass(frozen=True)
class TripleRow:
    head: str
    relation_id: int
    tail: str
    split: str = "train"
    # Fields beyond head/relation/tail/split, as JSON text (what an export gives back).
    fields: str = ""

    @property
    def key(self) -> tuple[str, int, int]:
        """What makes a triple one in a corpus: head, relation and normalized tail."""
        return (self.head, self.relation_id, tail_key(self.tail))


@contextmanager
def corpus_write_turn(corpus_id: int) -> Iterator[None]:
    """Writers into one corpus take turns (PostgreSQL: an advisory lock, held until the
    transaction ends when inside one), so what a writer finds held before it appends is
    what is held when it does. Elsewhere the database itself serializes writers."""
    if connection.vendor == "postgresql":
        with _import_turn(corpus_id):
            yield
    else:
        yield


def triples_append(
    *, corpus_id: int, rows: Sequence[TripleRow], origin: str, job_id: int | None = None
) -> int:
    """Merge `rows` into the corpus: a row it does not hold is added, one it holds counts
    one more occurrence. Rows with the same key are one row (the first is kept). Returns
    the number of distinct rows given. Callers refresh the corpus's counts when done."""
    distinct: dict[tuple[str, int, int], TripleRow] = {}
    for row in rows:
        distinct.setdefault(row.key, row)
    if not distinct:
        return 0
    keys = list(distinct)
    loader = make_loader(corpus_id=corpus_id, origin=origin, job_id=job_id)
    loader.open()
    try:
        loader.add(
            StageBlock(
                seqs=range(1, len(keys) + 1),
                heads=[head for head, _, _ in keys],
                relation_ids=[relation for _, relation, _ in keys],
                tails=[distinct[key].tail for key in keys],
                keys=[key for _, _, key in keys],
                splits=[distinct[key].split for key in keys],
                fields=[distinct[key].fields for key in keys],
                counts=[1] * len(keys),
            )
        )
        loader.finish()
    finally:
        loader.close()
    return len(keys)


def corpus_create(*, name: str, description: str = "", created_by=None) -> Corpus:
    corpus = Corpus(name=name, description=description, created_by=created_by)
    corpus.full_clean()
    corpus.save()
    return corpus


def corpus_empty(*, corpus_id: int) -> None:
    """Delete every triple of a corpus, keeping the corpus (one statement)."""
    corpus_delete_triples(corpus_id)


def corpus_delete(*, corpus: Corpus) -> None:
    from .scores import score_sets_drop

    Corpus.objects.filter(pk=corpus.pk).update(score_set=None)
    score_sets_drop(corpus.pk)
    corpus_drop_triples(corpus.pk)
    corpus.delete()


def relations_ensure_builtin() -> None:
    """Create the preloaded ATOMIC 2020 relations where they are missing (idempotent)."""
    from .relations import ATOMIC_2020_RELATIONS

    existing = set(Relation.objects.values_list("name", flat=True))
    Relation.objects.bulk_create(
        Relation(
            name=spec["name"],
            category=spec["category"],
            description=spec["description"],
            sentence_template=spec["sentence"],
            prompt_template=spec["prompt"],
            verbalization=spec["verbalization"],
            is_builtin=True,
            is_skd=spec["skd"],
        )
        for spec in ATOMIC_2020_RELATIONS
        if spec["name"] not in existing
    )


def relation_create(
    *,
    name: str,
    sentence_template: str,
    prompt_template: str,
    verbalization: str,
    description: str = "",
    category: str = "",
) -> Relation:
    relation = Relation(
        name=name,
        sentence_template=sentence_template,
        prompt_template=prompt_template,
        verbalization=verbalization,
        description=description,
        category=category,
    )
    relation.full_clean()
    relation.save()
    return relation


def corpus_import(
    *,
    path: str | Path,
    corpus_name: str,
    fmt: str = "auto",
    skip_invalid: bool = False,
    drop_none: bool | None = None,
    created_by=None,
    progress=None,
    job_id: int | None = None,
) -> ImportSummary:
    """Import a file; `drop_none` leaves out "none" tails (None: for ATOMIC TSV only)."""
    import_settings_check(corpus_name=corpus_name, fmt=fmt)
    return corpus_import_file(
        path=path,
        corpus_name=corpus_name,
        fmt=fmt,
        skip_invalid=skip_invalid,
        drop_none=drop_none,
        created_by=created_by,
        progress=progress,
        job_id=job_id,
    )


def corpus_export(
    *,
    corpus: Corpus,
    fmt: str,
    out_path: str | Path,
    flt: ExportFilter | None = None,
    progress=None,
) -> ExportSummary:
    return corpus_export_file(
        corpus=corpus, fmt=fmt, out_path=out_path, flt=flt or ExportFilter(), progress=progress
    )


def uploads_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "uploads"


def upload_save(*, uploaded) -> Path:
    """Stream an uploaded file (a Django UploadedFile) to MEDIA_ROOT/uploads/<uuid>/<name>."""
    folder = uploads_root() / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (get_valid_filename(Path(uploaded.name).name) or "upload")
    with open(path, "wb") as out:
        for chunk in uploaded.chunks():
            out.write(chunk)
    return path


def upload_discard(*, path: str | Path) -> bool:
    """Delete an upload once an import of it succeeded, unless another import job still
    waits to read it; files outside MEDIA_ROOT/uploads (the CLI's) are never touched.
    True when it was deleted."""
    path = Path(path)
    root = uploads_root().resolve()
    if not path.resolve().is_relative_to(root) or path.resolve() == root:
        return False
    waiting = Job.objects.filter(
        kind=IMPORT_JOB, status__in=Job.ACTIVE_STATUSES, params__path=str(path)
    )
    if waiting.exists():
        return False
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()  # unless it holds the import's rejected lines
    except OSError:
        pass
    return True


class ImportRetryRefused(Exception):
    """An import job cannot be run again on its valid lines; the message says why."""


def corpus_import_valid_lines(*, job: Job, created_by=None) -> Job:
    """Queue a new import of a failed import job's upload that skips its invalid lines
    (they go to a rejected file): the "Import the valid lines" of the job page and the
    API. Once per failed job: a second request names the job already made."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.kind != IMPORT_JOB:
            raise ImportRetryRefused(f"Job {job.pk} is not a corpus import.")
        if job.status != Job.Status.FAILED:
            raise ImportRetryRefused(
                f"Only a failed import can import its valid lines; job {job.pk} is {job.status}."
            )
        if job.params.get("skip_invalid"):
            raise ImportRetryRefused(
                f"Job {job.pk} already skipped invalid lines; retry it or fix the file."
            )
        earlier = (
            Job.objects.filter(kind=IMPORT_JOB, params__valid_lines_of=job.pk)
            .exclude(status__in=(Job.Status.FAILED, Job.Status.CANCELLED))
            .first()
        )
        if earlier is not None:
            raise ImportRetryRefused(
                f"The valid lines of job {job.pk} are already imported by job {earlier.pk} "
                f"({earlier.status})."
            )
        if not Path(job.params["path"]).is_file():
            raise ImportRetryRefused(
                f"The file of job {job.pk} is gone (uploads of failed imports are kept "
                f"{settings.IMPORT_UPLOAD_RETENTION_DAYS:g} days); upload it again."
            )
        return corpus_import_job_create(
            path=job.params["path"],
            corpus_name=job.params["corpus"],
            fmt=job.params.get("format", "auto"),
            skip_invalid=True,
            drop_none=job.params.get("drop_none"),
            created_by=created_by,
            valid_lines_of=job.pk,
        )


def corpus_url(corpus: Corpus) -> str:
    return reverse("corpora:corpus_detail", args=[corpus.pk])


def export_path_for(*, corpus: Corpus, fmt: str) -> Path:
    """Where an export job writes: MEDIA_ROOT/exports/<uuid>/<corpus-slug>.<fmt>."""
    folder = Path(settings.MEDIA_ROOT) / "exports" / uuid.uuid4().hex
    return folder / f"{slugify(corpus.name) or 'corpus'}.{fmt}"


# --- Jobs: the same services run by a Celery worker --------------------------------


def corpus_import_job_create(
    *,
    path: str | Path,
    corpus_name: str,
    fmt: str = "auto",
    skip_invalid: bool = False,
    drop_none: bool | None = None,
    created_by=None,
    valid_lines_of: int | None = None,
) -> Job:
    from .tasks import run_import_job

    import_settings_check(corpus_name=corpus_name, fmt=fmt)
    params = {
        "path": str(path),
        "corpus": corpus_name,
        "format": fmt,
        "skip_invalid": skip_invalid,
        "drop_none": drop_none,
    }
    if valid_lines_of is not None:
        params["valid_lines_of"] = valid_lines_of
    with transaction.atomic():
        job = job_create(
            kind=IMPORT_JOB,
            params=params,
            created_by=created_by,
            title=f"Import {Path(path).name} into {corpus_name}",
        )
        job_enqueue(job=job, task=run_import_job)
    return job


def corpus_import_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    def body(job: Job, progress) -> dict:
        params = job.params
        summary = corpus_import(
            path=params["path"],
            corpus_name=params["corpus"],
            fmt=params.get("format", "auto"),
            skip_invalid=params.get("skip_invalid", False),
            drop_none=params.get("drop_none"),
            created_by=job.created_by,
            progress=progress,
            job_id=job.pk,
        )
        # The link to the corpus is in place before the job shows as succeeded.
        corpus = Corpus.objects.filter(name=params["corpus"]).first()
        if corpus is not None:
            job_subject_set(job=job, url=corpus_url(corpus), label=corpus.name)
        return summary.as_dict()

    job = job_run(job_id=job_id, attempt=attempt, body=body)
    if job is not None and job.status == Job.Status.SUCCEEDED:
        upload_discard(path=job.params["path"])
    return job


def corpus_export_preset(
    *, corpus: Corpus, preset: int | str, fmt: str, out_path: str | Path, progress=None
) -> tuple[ExportSummary, Path | None]:
    """Export what a preset (by id or name) keeps, and write what goes beside the file
    (a dataset card; nothing for standard output). AppError when there is no such preset
    or it cannot be used now."""
    from .presets import preset_cut

    cut = preset_cut(corpus=corpus, preset=preset)
    summary = corpus_export(
        corpus=corpus, fmt=fmt, out_path=out_path, flt=cut.flt, progress=progress
    )
    extra = None if str(out_path) == "-" else cut.after(summary)
    return summary, extra


def corpus_export_job_create(
    *,
    corpus: Corpus,
    fmt: str,
    out_path: str | Path,
    flt: ExportFilter,
    created_by=None,
    preset_id: int | None = None,
) -> Job:
    from .tasks import run_export_job

    with transaction.atomic():
        job = job_create(
            kind=EXPORT_JOB,
            params={
                "corpus_id": corpus.pk,
                "format": fmt,
                "path": str(out_path),
                "relations": list(flt.relations),
                "split": flt.split,
                "min_score": flt.min_score,
                "preset_id": preset_id,
            },
            created_by=created_by,
            title=f"Export {corpus.name} as {fmt}",
            subject_url=corpus_url(corpus),
            subject_label=corpus.name,
        )
        job_enqueue(job=job, task=run_export_job)
    return job


def corpus_export_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    def body(job: Job, progress) -> dict:
        params = job.params
        corpus = Corpus.objects.get(pk=params["corpus_id"])
        total = corpus.triple_count
        progress(0, total, "exporting", force=True)
        where = {
            "corpus": corpus,
            "fmt": params["format"],
            "out_path": params["path"],
            "progress": lambda done, _total: progress(done, total, "exporting"),
        }
        extra = {}
        if params.get("preset_id"):
            # A preset's cut (the critic's), and what goes beside the file (its card).
            summary, card = corpus_export_preset(preset=params["preset_id"], **where)
            extra["card"] = str(card)
        else:
            flt = ExportFilter(
                relations=tuple(params.get("relations") or ()),
                split=params.get("split"),
                min_score=params.get("min_score"),
            )
            summary = corpus_export(flt=flt, **where)
        return {
            "rows": summary.rows,
            "seconds": round(summary.seconds, 2),
            "path": summary.path,
            "format": summary.format,
            **extra,
        }

    return job_run(job_id=job_id, attempt=attempt, body=body)
