"""Critic speed: embeddings/s, retrain time, rescore+write-back rows/s, threshold latency.

    python bench/critic_speed.py                      # every part
    python bench/critic_speed.py --parts embed        # one part
    python bench/critic_speed.py --parts scale --triples 1000000 --labels 20000
    python bench/critic_speed.py --parts threshold --big 6500000

embed      Encodes real triples (COMET-BART generations from ../shared/data) with
           sentence-transformers' defaults (the baseline) and with our Encoder in fp32,
           int8 (dynamic quantization) and bf16 (when the CPU has native bf16). Prints
           texts/s and triples/s (a triple needs its head+relation text and its tail text;
           texts shared by several triples are encoded once, as the cache does).
scale      On a fresh PostgreSQL database: imports a synthetic SKD JSONL corpus of
           --triples triples of which --labels carry a `valid` label, fills the embedding
           cache with synthetic vectors (encoding speed is the embed part's business),
           turns the labels into judgments, then times `critic_train` (the whole service:
           labels, cached embeddings, 5-fold held-out scores, final fit, curves, artifact)
           and `corpus_rescore` (read, score, COPY-based write-back, histograms).
threshold  Adds a --big-triple corpus (inserted with SQL, scores included), gives it the
           scale part's critic version and score histograms, and times the dashboard's
           slider fragment (the real view through Django's test client) at random
           thresholds: p50/p95 ms. Needs the scale part's database (run together).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
COMET = ROOT.parent / "shared" / "data" / "atomic2020" / "comet_bart_generations.jsonl"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


# --- embed ---------------------------------------------------------------------------


def comet_triples(path: Path, rows: int) -> list[tuple[str, str, str]]:
    triples = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            for tail in record["generations"]:
                if tail.strip() and tail.strip().lower() != "none":
                    triples.append((record["head"], record["relation"], tail))
            rows -= 1
            if rows == 0:
                break
    return triples


def bench_embed(args: argparse.Namespace) -> None:
    import torch

    from corpora.relations import ATOMIC_2020_RELATIONS
    from critic.ml.encoder import (
        Encoder,
        resolve_encoder_path,
        resolve_precision,
        set_cpu_threads,
    )
    from critic.ml.texts import head_text, tail_text

    threads = set_cpu_threads()
    verbalization = {r["name"]: r["verbalization"] for r in ATOMIC_2020_RELATIONS}
    triples = comet_triples(Path(args.comet), args.embed_rows)
    texts = sorted(
        {head_text(h, verbalization[r]) for h, r, _ in triples}
        | {tail_text(t) for _, _, t in triples}
    )
    print(
        f"embed: {len(triples):,} COMET-BART triples, {len(texts):,} distinct texts, "
        f"{threads} torch threads, torch {torch.__version__}"
    )

    def report(name: str, seconds: float) -> None:
        print(
            f"  {name:<46} {len(texts) / seconds:>8,.0f} texts/s"
            f"  {len(triples) / seconds:>8,.0f} triples/s  ({seconds:.1f} s)"
        )

    results = {}
    if not args.skip_baseline:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(resolve_encoder_path("all-MiniLM-L6-v2"), device="cpu")
        model.encode(texts[:64])
        started = time.perf_counter()
        results["baseline"] = model.encode(texts, normalize_embeddings=True)
        report("sentence-transformers defaults (batch 32)", time.perf_counter() - started)
        del model
    from critic.ml.encoder import cpu_has_native_bf16

    precisions = ["fp32", "int8"] + (["bf16"] if cpu_has_native_bf16() else [])
    default = resolve_precision("auto", torch.device("cpu"))
    for precision in precisions:
        encoder = Encoder(precision=precision)
        encoder.encode(texts[:64])
        started = time.perf_counter()
        results[precision] = encoder.encode(texts).astype(np.float32)
        label = f"ours, {precision}{' (the default here)' if precision == default else ''}"
        report(f"{label}, batch {encoder.batch_size}", time.perf_counter() - started)
    for precision in precisions[1:]:
        agreement = (results[precision] * results["fp32"]).sum(axis=1)
        print(
            f"  {precision} vectors against fp32's: cosine mean {agreement.mean():.5f}, "
            f"min {agreement.min():.5f}"
        )


# --- scale: retrain and rescore on PostgreSQL --------------------------------------------


def _fresh_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _setup_django(database_url: str, artifacts: Path) -> None:
    import subprocess

    os.environ["DATABASE_URL"] = database_url
    os.environ["SKD_ARTIFACT_ROOT"] = str(artifacts)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0", "--skip-checks"],
        cwd=ROOT,
        env=os.environ,
        check=True,
    )
    import django

    django.setup()


def _synthetic_skd(path: Path, triples: int, labels: int, verbalizations: dict, seed: int = 7):
    """An SKD JSONL corpus whose texts get random unit vectors and whose `valid` labels
    follow a hidden rule on those vectors (so the critic has something to learn)."""
    from critic.ml.texts import head_text, tail_text

    rng = np.random.default_rng(seed)
    relations = sorted(verbalizations)
    heads = [f"PersonX bench event number {i}" for i in range(max(1, triples // 49))]
    tails = [f"to do bench thing {j}" for j in range(max(1, triples // 5))]
    dim = 384
    per_pair = -(-triples // (len(heads) * len(relations)))
    head_vectors = {}
    tail_vectors = rng.standard_normal((len(tails), dim)).astype(np.float32)
    tail_vectors /= np.linalg.norm(tail_vectors, axis=1, keepdims=True)
    hidden = rng.standard_normal(dim).astype(np.float32)
    labelled = set(rng.choice(triples, size=min(labels, triples), replace=False).tolist())
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        for head in heads:
            for relation in relations:
                text = head_text(head, verbalizations[relation])
                vector = rng.standard_normal(dim).astype(np.float32)
                vector /= np.linalg.norm(vector)
                head_vectors[text] = vector
                for tail_index in rng.choice(len(tails), size=per_pair, replace=False):
                    if written >= triples:
                        break
                    record = {
                        "head": head,
                        "relation": relation,
                        "tail": tails[tail_index],
                        "split": "train",
                    }
                    if written in labelled:
                        signal = float((vector * tail_vectors[tail_index]) @ hidden) * 8
                        record["valid"] = 1 if signal + rng.normal(0, 0.5) > 0 else -1
                    out.write(json.dumps(record) + "\n")
                    written += 1
    tail_texts = {tail_text(t): tail_vectors[i] for i, t in enumerate(tails)}
    return written, {**head_vectors, **tail_texts}


def bench_scale(args: argparse.Namespace, workdir: Path) -> dict:
    from django.db import connection

    from annotation.services.labels import campaign_import_labels
    from corpora.models import Corpus
    from corpora.relations import SKD_RELATIONS
    from corpora.services import corpus_import
    from critic.corpus_data import relation_verbalizations
    from critic.ml.encoder import set_cpu_threads
    from critic.ml.store import text_keys
    from critic.services.config import critic_config_get
    from critic.services.embedding import embedding_store_get, encoder_get
    from critic.services.scoring import corpus_rescore
    from critic.services.training import critic_activate, critic_train

    set_cpu_threads()
    verbalizations = {name: verb for name, verb in relation_verbalizations().values()}
    verbalizations = {k: v for k, v in verbalizations.items() if k in SKD_RELATIONS}
    path = workdir / "corpus.jsonl"
    started = time.perf_counter()
    written, vectors = _synthetic_skd(path, args.triples, args.labels, verbalizations)
    print(f"scale: wrote {written:,} triples in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    summary = corpus_import(path=path, corpus_name="bench", fmt="skd")
    corpus = Corpus.objects.get(name="bench")
    print(
        f"  imported {summary.imported:,} triples in {time.perf_counter() - started:.1f} s"
        f" ({connection.vendor})"
    )
    started = time.perf_counter()
    campaign_import_labels(corpus=corpus)
    print(f"  {args.labels:,} SKD labels to judgments in {time.perf_counter() - started:.1f} s")

    config = critic_config_get(corpus=corpus)
    encoder = encoder_get(config.encoder)
    store = embedding_store_get(encoder)
    texts = list(vectors)
    started = time.perf_counter()
    store.add(text_keys(texts), np.stack([vectors[t] for t in texts]))
    print(
        f"  cache filled with {len(texts):,} synthetic vectors "
        f"({store.size_bytes() / 2**20:,.0f} MB) in {time.perf_counter() - started:.1f} s"
    )
    del vectors

    started = time.perf_counter()
    version = critic_train(corpus=corpus, queue_rescore=False)
    retrain = time.perf_counter() - started
    print(
        f"  retrain (critic_train, {version.label_count:,} labels, 5-fold held-out + fit): "
        f"{retrain:.2f} s; held-out ROC-AUC {version.metrics.get('roc_auc'):.3f}"
    )
    critic_activate(version=version, queue_rescore=False)
    started = time.perf_counter()
    scoring = corpus_rescore(corpus=corpus)
    seconds = time.perf_counter() - started
    print(
        f"  rescore + write-back: {scoring.scored_count:,} triples in {seconds:.1f} s = "
        f"{scoring.scored_count / seconds:,.0f} triples/s"
    )
    started = time.perf_counter()
    corpus_rescore(corpus=corpus)
    seconds = time.perf_counter() - started
    print(
        f"  rescore again (a new score set replaces the first): "
        f"{scoring.scored_count / seconds:,.0f} triples/s"
    )
    return {"corpus": corpus, "version": version}


# --- threshold latency on a big corpus ---------------------------------------------------


def bench_threshold(args: argparse.Namespace, scale: dict) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.test import Client
    from django.urls import reverse

    from corpora.models import Corpus, Event, Relation, Triple
    from corpora.relations import SKD_RELATIONS
    from corpora.scores import ScoreSetWriter
    from critic import selectors, thresholds
    from critic.models import CorpusScoring, CriticVersion

    small_version: CriticVersion = scale["version"]
    relations = list(Relation.objects.filter(name__in=SKD_RELATIONS).values_list("id", "name"))
    big = Corpus.objects.create(name="bench-big")
    events = max(1, args.big // 35)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Event._meta.db_table} (text) SELECT 'PersonX big bench event ' || g "
            "FROM generate_series(1, %s) g",
            [events],
        )
        first_event = Event.objects.filter(text="PersonX big bench event 1").values_list(
            "id", flat=True
        )[0]
        ids = "ARRAY[" + ",".join(str(r) for r, _ in relations) + "]"
        cursor.execute(
            f"INSERT INTO {Triple._meta.db_table} (corpus_id, head_id, relation_id, tail, "
            "tail_key, split, origin, occurrences, source_fields) "
            f"SELECT %s, %s + (g / {len(relations)}) %% %s, ({ids})[1 + g %% {len(relations)}], "
            "'to do big bench thing ' || g, g, 'train', 'import', 1, '' "
            "FROM generate_series(0, %s - 1) g",
            [big.pk, first_event, events, args.big],
        )
        cursor.execute(f"ANALYZE {Triple._meta.db_table}")
        cursor.execute(
            f"SELECT min(id), max(id) FROM {Triple._meta.db_table} WHERE corpus_id = %s",
            [big.pk],
        )
        low, high = cursor.fetchone()
    # One INSERT numbered the rows in series order: row g has id low + g.
    assert high - low + 1 == args.big
    triple_ids = np.arange(low, high + 1, dtype=np.int64)
    relation_of = np.array([r for r, _ in relations])[np.arange(args.big) % len(relations)]
    # A score that looks like a critic's: mostly confident, a bulk near the middle.
    rng = np.random.default_rng(3)
    scores = 1 / (1 + np.exp(-(rng.random(args.big) * 8 - 2.5)))
    writer = ScoreSetWriter(big.pk)
    for start in range(0, args.big, 500_000):
        writer.write(triple_ids[start : start + 500_000], scores[start : start + 500_000])
    writer.commit()
    positions = thresholds.bin_of(scores)
    histogram = {
        name: np.bincount(
            positions[relation_of == relation_id], minlength=thresholds.HISTOGRAM_BINS
        ).tolist()
        for relation_id, name in relations
    }
    Corpus.objects.filter(pk=big.pk).update(triple_count=args.big, occurrence_count=args.big)
    with transaction.atomic():
        version = CriticVersion.objects.get(pk=small_version.pk)
        version.pk = None
        version.corpus = big
        version.is_active = True
        version.save()
        CorpusScoring.objects.create(
            corpus=big, version=version, scored_count=args.big, histogram=histogram, seconds=0
        )
    print(
        f"threshold: corpus of {args.big:,} scored triples inserted with SQL in "
        f"{time.perf_counter() - started:.1f} s"
    )

    user = get_user_model().objects.create_user("bench-researcher", password="x")
    user.groups.add(Group.objects.get_or_create(name="researcher")[0])
    client = Client()
    client.force_login(user)
    url = reverse("critic:threshold", args=[big.pk])
    rng = random.Random(3)

    def request(threshold: float) -> float:
        started = time.perf_counter()
        response = client.get(
            url,
            {"version": version.number, "threshold": f"{threshold:.3f}"},
            HTTP_HX_REQUEST="true",
        )
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.content[:500]
        return elapsed

    cold = request(0.5)
    timings = [request(rng.random()) for _ in range(args.requests)]
    parts = {"report": [], "near": []}
    for _ in range(args.requests):
        t = rng.random()
        started = time.perf_counter()
        selectors.threshold_report(corpus=big, version=version, threshold=t)
        parts["report"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        selectors.triples_near_threshold(corpus=big, threshold=t)
        parts["near"].append((time.perf_counter() - started) * 1000)

    def p(values, q):
        return statistics.quantiles(values, n=100)[q - 1]

    print(
        f"  slider fragment (view, template, {args.requests} random thresholds): "
        f"p50 {p(timings, 50):.1f} ms, p95 {p(timings, 95):.1f} ms, max {max(timings):.1f} ms;"
        f" first request (cold caches) {cold:.1f} ms"
    )
    print(
        f"  of which: counts+estimates p50 {p(parts['report'], 50):.1f} ms, "
        f"triples near the line p50 {p(parts['near'], 50):.1f} ms / "
        f"p95 {p(parts['near'], 95):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="embed,scale,threshold")
    parser.add_argument("--comet", default=str(COMET))
    parser.add_argument("--embed-rows", type=int, default=400, help="COMET rows to embed")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--triples", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=20_000)
    parser.add_argument("--big", type=int, default=6_500_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--database", default="skd_bench_critic")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"{_cpus()} CPUs")
    if "embed" in parts:
        bench_embed(args)
    if parts & {"scale", "threshold"}:
        with tempfile.TemporaryDirectory(prefix="critic-bench-") as workdir:
            _setup_django(_fresh_database(args.database), Path(workdir) / "artifacts")
            scale = bench_scale(args, Path(workdir))
            if "threshold" in parts:
                bench_threshold(args, scale)
            from django.db import connections

            connections.close_all()
        _fresh_database(args.database)  # leave an empty database, not gigabytes


if __name__ == "__main__":
    main()
