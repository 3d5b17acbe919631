"""Handing a student's outputs back: written as a corpus of their own, and sent to
annotation so people judge them as they judged the teacher's.
"""

from __future__ import annotations

import orjson
from django.db import transaction

from corpora.models import Relation, Triple
from corpora.services import TripleRow, corpus_empty, tail_key, triples_append

from ..errors import DistillationError
from ..models import StudentEvaluation


def evaluation_outputs_write(
    *, evaluation: StudentEvaluation, pairs: list[tuple[str, str]], tails: list[list[str]]
) -> int:
    """The student's outputs written as the evaluation's corpus, each (head, relation,
    tail) once; a retried job writes them again. Returns how many were written."""
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
