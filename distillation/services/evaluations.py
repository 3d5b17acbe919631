"""Evaluating a trained run: the (head, relation) pairs to generate for, generation, and
the measures of what the student wrote (diversity, novelty against its training tails,
BLEU and ROUGE-L against references, the critic's estimate of acceptance).
"""

from __future__ import annotations

import random

import numpy as np
import xxhash
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from corpora.models import Corpus, Relation, Triple
from jobs.models import Job

from ..errors import DistillationError
from ..folders import run_folder, verified_model_folder
from ..limits import evaluation_settings_check
from ..models import StudentEvaluation, StudentRun
from .outputs import evaluation_outputs_write

EVALUATE_JOB = "distillation.evaluate"


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

    evaluation_settings_check(
        decoding=decoding,
        max_heads=max_heads,
        n_per_pair=n_per_pair,
        num_beams=num_beams,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
    )
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
        try:
            evaluation.full_clean(exclude=["corpus"])
        except ValidationError as exc:
            field, messages = next(iter(exc.message_dict.items()))
            raise DistillationError(messages[0], field=field) from None
        evaluation.save()
        if relations:
            evaluation.relations.set(relations)
    return evaluation


def evaluation_start(*, evaluation: StudentEvaluation, created_by=None) -> Job:
    from jobs.services import job_create, job_enqueue, job_retry

    from ..tasks import run_evaluate_job

    if evaluation.job_id is not None:
        job = evaluation.job
        if job.status in (Job.Status.FAILED, Job.Status.CANCELLED):
            return job_retry(job=job)
        return job
    with transaction.atomic():
        job = job_create(
            kind=EVALUATE_JOB,
            params={"evaluation_id": evaluation.pk},
            created_by=created_by,
            title=f"Evaluating student run {evaluation.run_id}",
            subject_url=reverse("distillation:evaluation_detail", args=[evaluation.pk]),
            subject_label=f"Evaluation {evaluation.pk}",
        )
        StudentEvaluation.objects.filter(pk=evaluation.pk).update(job=job)
        queue = None if evaluation.run.device == "cpu" else "gpu"
        job_enqueue(job=job, task=run_evaluate_job, queue=queue)
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
    from ..ml import measures
    from ..ml.generating import generate_tails

    run = evaluation.run
    pairs, references = _pairs(evaluation)
    if not pairs:
        raise DistillationError(f"Evaluation {evaluation.pk} found no (head, relation) pairs.")
    StudentEvaluation.objects.filter(pk=evaluation.pk).update(pairs=len(pairs))
    if progress:
        progress(0, len(pairs), "generating", force=True)
    result = generate_tails(
        model_dir=verified_model_folder(run),
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
    written = evaluation_outputs_write(evaluation=evaluation, pairs=pairs, tails=result.tails)
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
