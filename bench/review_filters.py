"""The review page's filters at scale, on PostgreSQL: a campaign of 100,000 items with a
million judgments.

    python bench/review_filters.py                        # 100k items, k=10, 50 annotators
    python bench/review_filters.py --items 20000 --k 3 --keep

Creates its own database (drop, create, migrate), loads a synthetic corpus with COPY,
makes the campaign through `services.campaign_create`, writes k judgments per item (a
third of the items split, four of k rejecting; one judgment in a thousand flagged), the
labels (majority and its confidence) and a critic score set with SQL, then times, for
each filter, the first page of the review (the items and their rows: answers and
scores), page 40, and the count the page shows (capped at 10,000), and prints the query
plan of the slowest count. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432/skd_review_bench")
    parser.add_argument("--repeat", type=int, default=3, help="timings: the best of N")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    from annotate_load import drop_database, recreate_database

    env = {
        **os.environ,
        "DATABASE_URL": args.pg,
        "SKD_VAR_DIR": str(ROOT / "var" / "bench-review"),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("CELERY_BROKER_URL", None)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    recreate_database(args.pg)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0", "--skip-checks"],
        env=env,
        cwd=ROOT,
        check=True,
    )
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(args.pg)


def run(args) -> None:
    from annotate_load import build_corpus, make_annotators
    from django.db import connection

    from annotation.models import Campaign, Item, Judgment
    from annotation.review import FILTERS, PAGE_SIZE, ReviewFilter, review_items, review_rows
    from annotation.services.campaigns import campaign_create
    from core.pagination import CappedCountPaginator
    from corpora.models import Triple
    from corpora.scores import score_set_write

    started = time.perf_counter()
    corpus = build_corpus(args.items)
    campaign = campaign_create(
        corpus=corpus,
        name="review",
        size=args.items,
        judgments_per_item=args.k,
        seed=1,
        gold_share=0.01,
    )
    make_annotators(args.annotators)
    print(
        f"corpus and campaign: {campaign.item_count:,} items + {campaign.gold_count:,} gold "
        f"in {time.perf_counter() - started:.1f} s"
    )

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(id ORDER BY id) FROM auth_user")
        (annotators,) = cursor.fetchone()
        # k distinct annotators per item; a third of the items split, the rest agree.
        cursor.execute(
            f"INSERT INTO {Judgment._meta.db_table} "
            "(campaign_id, item_id, annotator_id, value, flagged, created_at, seconds) "
            "SELECT i.campaign_id, i.id, (%s::bigint[])[1 + (i.id * 7 + g) %% %s], "
            "CASE WHEN i.id %% 3 = 0 AND g < 4 THEN -2 WHEN i.id %% 5 = 0 THEN -1 ELSE 2 END, "
            "random() < 0.001, now() - (g || ' minutes')::interval, 2 + 10 * random() "
            f"FROM {Item._meta.db_table} i, generate_series(0, %s - 1) g "
            "WHERE i.campaign_id = %s",
            [annotators, len(annotators), args.k, campaign.pk],
        )
        judgments = cursor.rowcount
        cursor.execute(
            f"UPDATE {Item._meta.db_table} SET judgment_count = %s, slots_free = 0, "
            "majority = (id %% 5 <> 0), "
            "majority_confidence = CASE WHEN id %% 3 = 0 THEN %s ELSE 1.0 END "
            "WHERE campaign_id = %s AND NOT is_gold",
            [args.k, max(4, args.k - 4) / args.k, campaign.pk],
        )
        cursor.execute("ANALYZE")
    Campaign.objects.filter(pk=campaign.pk).update(aggregated_at=django_now())
    print(f"judgments: {judgments:,} written with SQL in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    import numpy as np

    ids = np.fromiter(
        Triple.objects.filter(corpus=corpus).values_list("pk", flat=True), dtype=np.int64
    )
    score_set_write(
        corpus=corpus,
        scores=dict(zip(ids.tolist(), np.random.default_rng(3).random(len(ids)), strict=True)),
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"critic scores: {len(ids):,} in {time.perf_counter() - started:.1f} s")

    print(f"\n{'filter':<18} {'first page':>11} {'page 40':>9} {'count (cap)':>18}")
    slowest = (0.0, "")
    for kind in FILTERS:
        flt = ReviewFilter(kind=kind)
        timings = {"first": [], "deep": [], "count": []}
        count = 0
        for _ in range(args.repeat):
            for name, number in (("first", 1), ("deep", 40)):
                t0 = time.perf_counter()
                paginator = CappedCountPaginator(
                    review_items(campaign=campaign, flt=flt), PAGE_SIZE
                )
                items = list(paginator.object_list[(number - 1) * PAGE_SIZE : number * PAGE_SIZE])
                review_rows(campaign=campaign, items=items)
                timings[name].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            count = CappedCountPaginator(review_items(campaign=campaign, flt=flt), PAGE_SIZE).count
            timings["count"].append(time.perf_counter() - t0)
        best = {name: 1000 * min(values) for name, values in timings.items()}
        print(
            f"{kind or 'all':<18} {best['first']:>8.1f} ms {best['deep']:>6.1f} ms "
            f"{best['count']:>8.1f} ms ({count:,})"
        )
        slowest = max(slowest, (best["count"], kind))
    kind = slowest[1]
    qs = review_items(campaign=campaign, flt=ReviewFilter(kind=kind))
    print(f"\nplan of the count of '{kind or 'all'}':")
    sql, params = qs.values("pk")[:10_000].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ANALYZE SELECT count(*) FROM ({sql}) s", params)
        for (line,) in cursor.fetchall():
            print("  " + line)


def django_now():
    from django.utils import timezone

    return timezone.now()


if __name__ == "__main__":
    main()
