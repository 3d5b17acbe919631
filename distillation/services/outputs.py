"""Handing a student's outputs back: written as a corpus of their own, and sent to
annotation so people judge them as they judged the teacher's, blind: mixed with the
teacher's tails for the same heads and relations, under a neutral name.
"""

from __future__ import annotations

import random
from datetime import date

import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Campaign
from corpora.importing import NONE_TAIL_KEY
from corpora.models import Relation, Triple
from corpora.services import TripleRow, corpus_empty, tail_key, triples_append

from ..errors import DistillationError
from ..limits import send_settings_check
from ..models import StudentEvaluation

CHUNK = 500
NAME_TRIES = 5
DEFAULT_GOLD_SHARE = 0.1
# A blind campaign names neither the student nor the teacher, nor says that a model wrote
# anything: its name and instructions are the same for every evaluation.
BLIND_TITLE = "Commonsense judgments"
BLIND_INSTRUCTIONS = (
    "Each statement links an everyday event to something that may come before it, after "
    "it, or with it. Judge each one on its own: how often does it hold? Use the guideline "
    'of its relation, and choose "can\'t judge" when you cannot make sense of it.'
)


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


def _student_picks(*, corpus_id: int, size: int | None, seed: int) -> list[int]:
    """Up to `size` of the student's outputs (all when None), stratified by relation as an
    audit of the corpus is."""
    from annotation.models import Campaign
    from annotation.sampling import choose, corpus_candidates

    candidates = corpus_candidates(corpus_id=corpus_id)
    wanted = len(candidates.ids) if size is None else min(size, len(candidates.ids))
    picked = choose(
        candidates=candidates, size=wanted, sampling=Campaign.Sampling.RELATION, seed=seed
    )
    return [int(t) for t in candidates.ids[picked]]


def _triple_keys(ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """triple id -> (head id, relation id, tail key)."""
    keys: dict[int, tuple[int, int, int]] = {}
    for start in range(0, len(ids), CHUNK):
        rows = Triple.objects.filter(pk__in=ids[start : start + CHUNK]).values_list(
            "pk", "head_id", "relation_id", "tail_key"
        )
        keys.update((pk, (head, relation, key)) for pk, head, relation, key in rows)
    return keys


def blind_triples(
    *, student_ids: list[int], teacher_corpus_id: int | None, seed: int
) -> list[tuple[int, str]]:
    """(triple id, source) for a blind campaign: the student's picks, and for each (head,
    relation) among them as many of the teacher's tails for it (drawn at random by the
    seed, from the teacher corpus) as the student has there.

    A drawn teacher tail the student also wrote for the same head and relation (same tail
    key) is not asked twice: the student's item is marked "both" and counts for both."""
    from annotation.sources import BOTH, STUDENT, TEACHER

    keys = _triple_keys(student_ids)
    source = {pk: STUDENT for pk in student_ids}
    if teacher_corpus_id is None:
        return list(source.items())
    per_pair: dict[tuple[int, int], dict[int, int]] = {}  # pair -> tail key -> student id
    for pk in student_ids:
        head, relation, key = keys[pk]
        per_pair.setdefault((head, relation), {})[key] = pk
    teacher: dict[tuple[int, int], list[tuple[int, int]]] = {}
    heads = sorted({head for head, _ in per_pair})
    of_teacher = Triple.objects.filter(corpus_id=teacher_corpus_id)
    for start in range(0, len(heads), CHUNK):
        rows = (
            of_teacher.filter(head_id__in=heads[start : start + CHUNK])
            .exclude(tail_key=NONE_TAIL_KEY)
            .values_list("pk", "head_id", "relation_id", "tail_key")
        )
        for pk, head, relation, key in rows:
            if (head, relation) in per_pair:
                teacher.setdefault((head, relation), []).append((pk, key))
    rng = random.Random(seed)
    out = list(source.items())
    for pair in sorted(teacher):
        students = per_pair[pair]
        tails = sorted(teacher[pair])
        for pk, key in rng.sample(tails, min(len(students), len(tails))):
            if key in students:
                source[students[key]] = BOTH
            else:
                out.append((pk, TEACHER))
    return [(pk, source.get(pk, kind)) for pk, kind in out]


def blind_campaign_name(*, today: date | None = None) -> str:
    """A neutral, unused campaign name: "Commonsense judgments <date> #<n>"."""
    from annotation.models import Campaign

    prefix = f"{BLIND_TITLE} {(today or timezone.localdate()).isoformat()} #"
    taken = set(Campaign.objects.filter(name__startswith=prefix).values_list("name", flat=True))
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def evaluation_send_to_annotation(
    *,
    evaluation: StudentEvaluation,
    size: int | None = None,
    judgments_per_item: int = 3,
    gold_share: float = DEFAULT_GOLD_SHARE,
    with_teacher: bool = True,
    seed: int | None = None,
    created_by=None,
):
    """A blind campaign over the student's outputs, so people judge them as they judged
    the teacher's without knowing whose they are: up to `size` outputs (all when None),
    and with `with_teacher` as many of the teacher's tails for the same heads and relations
    (from the run's corpus), shuffled together by the seed, under a neutral name and
    neutral instructions. Each item records its source (`Item.source`, never shown to
    annotators). Sending twice returns the same campaign."""
    from annotation.errors import AnnotationError
    from annotation.services.campaigns import campaign_create_from_triples

    send_settings_check(
        size=size, judgments_per_item=judgments_per_item, gold_share=gold_share, seed=seed
    )
    if evaluation.campaign_id is not None:
        return evaluation.campaign
    corpus = evaluation.corpus
    corpus.refresh_from_db()
    if corpus.triple_count == 0:
        raise DistillationError(f"Evaluation {evaluation.pk} has no outputs yet.")
    seed = random.randrange(2**31) if seed is None else seed
    student_ids = _student_picks(corpus_id=corpus.pk, size=size, seed=seed)
    triples = blind_triples(
        student_ids=student_ids,
        teacher_corpus_id=evaluation.run.corpus_id if with_teacher else None,
        seed=seed,
    )
    with transaction.atomic():
        StudentEvaluation.objects.select_for_update().filter(pk=evaluation.pk).first()
        evaluation.refresh_from_db()
        if evaluation.campaign_id is not None:
            return evaluation.campaign
        for attempt in range(1, NAME_TRIES + 1):
            # Another send may take the same "#<n>" at the same moment: take the next one.
            try:
                with transaction.atomic():
                    campaign = campaign_create_from_triples(
                        corpus=corpus,
                        name=blind_campaign_name(),
                        triples=triples,
                        sampling=Campaign.Sampling.RELATION,
                        purpose=Campaign.Purpose.AUDIT,
                        judgments_per_item=judgments_per_item,
                        gold_share=gold_share,
                        instructions=BLIND_INSTRUCTIONS,
                        seed=seed,
                        created_by=created_by,
                    )
                break
            except IntegrityError:
                if attempt == NAME_TRIES:
                    raise
            except AnnotationError as exc:
                if exc.field != "name" or attempt == NAME_TRIES:
                    raise DistillationError(str(exc), field=exc.field) from exc
        StudentEvaluation.objects.filter(pk=evaluation.pk).update(campaign=campaign)
    evaluation.campaign = campaign
    return campaign
