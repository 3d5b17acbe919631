"""The embedding cache: the frozen encoder and its store, and the jobs that fill the
store for a corpus (split into id ranges, so several workers share it)."""

from __future__ import annotations

import time
import uuid

from django.db import transaction

from corpora.models import Corpus
from jobs.models import Job
from jobs.services import job_create, job_enqueue, job_run

from ..corpus_data import corpus_chunks, id_ranges, relation_verbalizations
from ..errors import CriticError
from ..ml.embedding import chunk_embeddings
from ..ml.loading import embedding_store_load, encoder_load
from ..models import EmbeddingSet
from .config import artifact_root, critic_config_get

EMBED_JOB = "critic.embed"
EMBED_CHUNK = 200_000


def encoder_get(name: str):
    """The frozen encoder of that name (loaded once per process); CriticError when it
    cannot be loaded."""
    try:
        return encoder_load(name)
    except (OSError, ValueError) as exc:
        raise CriticError(f"Encoder {name!r} could not be loaded: {exc}") from exc


def embedding_set_get(*, encoder_key: str) -> EmbeddingSet:
    """This database's shard set for an encoder, made on first use under
    embeddings/<its own key>/ (so another database sharing the artifact store never
    writes into it)."""
    try:
        return EmbeddingSet.objects.get(encoder_key=encoder_key)
    except EmbeddingSet.DoesNotExist:
        pass
    artifact_key = uuid.uuid4()
    embedding_set, _ = EmbeddingSet.objects.get_or_create(
        encoder_key=encoder_key,
        defaults={"artifact_key": artifact_key, "folder": f"embeddings/{artifact_key}"},
    )
    return embedding_set


def embedding_store_get(encoder):
    """The embedding store of an encoder: its shard set's folder in the artifact store."""
    embedding_set = embedding_set_get(encoder_key=encoder.key)
    return embedding_store_load(str(artifact_root() / embedding_set.folder))


def corpus_embed(
    *, corpus: Corpus, first_id: int = 0, last_id: int | None = None, progress=None
) -> int:
    """Cache the embeddings of a corpus's triples (ids in [first_id, last_id]); returns
    how many triples were looked at. Texts already cached are not encoded again."""
    config = critic_config_get(corpus=corpus)
    encoder = encoder_get(config.encoder)
    store = embedding_store_get(encoder)
    verbalizations = relation_verbalizations()
    done = 0
    for chunk in corpus_chunks(corpus_id=corpus.pk, chunk_size=20_000, after=first_id - 1):
        last = last_id is not None and int(chunk.ids.max()) >= last_id
        if last:
            chunk = chunk.until(last_id)
        if len(chunk):
            chunk_embeddings(encoder, store, chunk, verbalizations)
            done += len(chunk)
            if progress:
                progress(done, None)
        if last:
            break
    return done


def corpus_embed_jobs_create(*, corpus: Corpus, created_by=None) -> list[Job]:
    """Split the corpus into id ranges, one job each, so several workers share it."""
    from ..tasks import run_embed_job

    ranges = id_ranges(corpus_id=corpus.pk, size=EMBED_CHUNK)
    jobs = []
    with transaction.atomic():
        for first_id, last_id, count in ranges:
            job = job_create(
                kind=EMBED_JOB,
                params={
                    "corpus_id": corpus.pk,
                    "first_id": first_id,
                    "last_id": last_id,
                    "triples": count,
                },
                created_by=created_by,
            )
            job_enqueue(job=job, task=run_embed_job)
            jobs.append(job)
    return jobs


def corpus_embed_job_run(*, job_id: int, attempt: int | None = None) -> Job | None:
    def body(job: Job, progress) -> dict:
        params = job.params
        corpus = Corpus.objects.get(pk=params["corpus_id"])
        total = params.get("triples")
        started = time.perf_counter()
        done = corpus_embed(
            corpus=corpus,
            first_id=params["first_id"],
            last_id=params["last_id"],
            progress=lambda n, _t: progress(n, total, "embedding"),
        )
        seconds = time.perf_counter() - started
        return {"triples": done, "seconds": round(seconds, 1)}

    return job_run(job_id=job_id, attempt=attempt, body=body)
