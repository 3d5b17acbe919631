"""Reads of teachers, few-shot pools and runs for pages, the API and lineage."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from corpora.models import Corpus

from .models import FewShotPool, GenerationRun, Teacher


def teachers_listed() -> QuerySet[Teacher]:
    return Teacher.objects.all()


def pools_listed() -> QuerySet[FewShotPool]:
    return FewShotPool.objects.annotate(
        seed_count=Count("examples", filter=Q(examples__relation__isnull=True)),
        example_count=Count("examples", filter=Q(examples__relation__isnull=False)),
    ).order_by("name")


def runs_listed() -> QuerySet[GenerationRun]:
    return GenerationRun.objects.select_related("teacher", "pool", "corpus", "job")


def corpus_sources(*, corpus: Corpus) -> dict[str, list[dict]]:
    """How a corpus was made, for lineage: the teacher runs that wrote into it (teacher,
    model, few-shot pool) and the files imported into it."""
    runs = GenerationRun.objects.filter(corpus=corpus).select_related("teacher", "pool")
    return {
        "generation_runs": [
            {
                "id": r.pk,
                "teacher": r.teacher.name,
                "model": r.teacher.model,
                "pool": r.pool.name,
                "pool_id": r.pool_id,
                "triples": r.triples_written,
                "created_at": r.created_at.isoformat(),
            }
            for r in runs
        ],
        "imports": list(corpus.imports),
    }
