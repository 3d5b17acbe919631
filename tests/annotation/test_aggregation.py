import csv
import io

import orjson
import pytest

from annotation.errors import AnnotationError
from annotation.exporting import judgment_export_chunks
from annotation.models import Campaign, Item, Judgment
from annotation.services.aggregation import (
    AGGREGATE_JOB,
    campaign_aggregate,
    campaign_aggregate_job_create,
    campaign_aggregate_job_run,
)
from annotation.services.campaigns import campaign_create
from annotation.services.judgments import judgment_submit
from annotation.services.labels import campaign_import_labels
from annotation.services.leasing import assignment_next
from annotation.services.standing import annotator_pause
from corpora.services import corpus_import
from jobs.models import Job
from tests.annotation.conftest import add_members

pytestmark = pytest.mark.django_db


def judge_everything(campaign, annotators, answer):
    """Each annotator judges until nothing is left; answer(annotator_index, item) -> value."""
    add_members(campaign, annotators)
    for index, annotator in enumerate(annotators):
        while lease := assignment_next(campaign=campaign, annotator=annotator):
            judgment_submit(
                assignment_id=lease.pk, annotator=annotator, value=answer(index, lease.item)
            )


def test_aggregation_labels_items_and_measures_the_campaign(corpus, annotators):
    campaign = campaign_create(corpus=corpus, name="c", size=12, gold_share=0.0, seed=3)
    # Two annotators call odd positions acceptable; the third dissents on everything.
    judge_everything(
        campaign,
        annotators[:3],
        lambda who, item: (2 if item.position % 2 else -2) * (-1 if who == 2 else 1),
    )
    stats = campaign_aggregate(campaign=campaign)

    items = Item.objects.filter(campaign=campaign)
    for item in items:
        assert item.majority == bool(item.position % 2)
        assert item.majority_confidence == pytest.approx(2 / 3)
        assert item.ds_label is not None
    overall = stats["overall"]
    assert stats["judgments"] == 36
    assert overall["acceptance"]["decided"] == 12
    assert overall["acceptance"]["rate"] == pytest.approx(0.5)
    assert overall["acceptance"]["low"] < 0.5 < overall["acceptance"]["high"]
    assert overall["pairwise"] == pytest.approx(1 / 3)
    assert overall["alpha_binary"] < 0.2
    assert {row["relation"] for row in stats["by_relation"]} <= {
        "xNeed",
        "xIntent",
        "xWant",
        "oEffect",
    }
    table = {row["username"]: row for row in stats["annotators"]}
    assert table[annotators[0].username]["judgments"] == 12
    assert table[annotators[2].username]["agreement"] == pytest.approx(0.0)
    assert table[annotators[0].username]["agreement"] == pytest.approx(0.5)
    campaign.refresh_from_db()
    assert campaign.aggregated_at is not None and campaign.stats == stats


def test_paused_annotators_and_gold_are_left_out(corpus, annotators):
    campaign = campaign_create(corpus=corpus, name="c", size=6, gold_share=0.5, gold_count=4)
    judge_everything(campaign, annotators[:3], lambda who, item: -2 if who == 2 else 2)
    for annotator in annotators[:3]:
        annotator.refresh_from_db()
    annotator_pause(campaign=campaign, annotator=annotators[2])
    stats = campaign_aggregate(campaign=campaign)
    assert stats["excluded_annotators"] == [annotators[2].username]
    gold_ids = set(
        Item.objects.filter(campaign=campaign, is_gold=True).values_list("pk", flat=True)
    )
    regular = Judgment.objects.filter(campaign=campaign).exclude(item_id__in=gold_ids)
    assert stats["judgments"] == regular.exclude(annotator=annotators[2]).count()
    assert stats["overall"]["acceptance"]["rate"] == 1.0
    assert Item.objects.filter(campaign=campaign, is_gold=True, majority__isnull=False).count() == 0


def test_aggregation_job_is_deduplicated_and_runs(
    corpus, annotators, django_capture_on_commit_callbacks
):
    campaign = campaign_create(corpus=corpus, name="c", size=3, gold_share=0.0)
    judge_everything(campaign, annotators[:2], lambda who, item: 1)
    with django_capture_on_commit_callbacks(execute=False):
        first = campaign_aggregate_job_create(campaign=campaign)
        second = campaign_aggregate_job_create(campaign=campaign)
    assert first.pk == second.pk
    assert Job.objects.filter(kind=AGGREGATE_JOB).count() == 1
    job = campaign_aggregate_job_run(job_id=first.pk)
    assert job.status == Job.Status.SUCCEEDED
    assert job.result["judgments"] == 6


def test_imported_skd_labels_become_judgments(tmp_path):
    path = tmp_path / "release.jsonl"
    lines = [
        {"head": "PersonX bakes bread", "relation": "xNeed", "tail": "flour", "valid": 2},
        {"head": "PersonX bakes bread", "relation": "xWant", "tail": "to eat", "valid": 1},
        {"head": "PersonX bakes bread", "relation": "xIntent", "tail": "to fly", "valid": -2},
        {"head": "PersonX bakes bread", "relation": "xAttr", "tail": "hungry"},
    ]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    corpus_import(path=path, corpus_name="release", fmt="skd")
    from corpora.models import Corpus

    campaign = campaign_import_labels(corpus=Corpus.objects.get(name="release"))
    assert campaign.status == Campaign.Status.CLOSED
    assert campaign.item_count == 3
    values = sorted(Judgment.objects.filter(campaign=campaign).values_list("value", flat=True))
    assert values == [-2, 1, 2]
    assert {j.annotator.username for j in Judgment.objects.filter(campaign=campaign)} == {
        "imported"
    }
    campaign.refresh_from_db()
    assert campaign.stats["overall"]["acceptance"]["rate"] == pytest.approx(2 / 3)


def test_importing_labels_from_a_corpus_without_them_is_refused(corpus):
    with pytest.raises(AnnotationError, match="no triples with a `valid` label"):
        campaign_import_labels(corpus=corpus)


def test_exports_raw_and_aggregated(corpus, annotators):
    campaign = campaign_create(corpus=corpus, name="c", size=2, gold_share=0.0)
    judge_everything(campaign, annotators[:2], lambda who, item: 2)
    campaign_aggregate(campaign=campaign)
    raw = b"".join(judgment_export_chunks(campaign=campaign, fmt="csv")).decode()
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert len(rows) == 4
    assert {r["value"] for r in rows} == {"2"}
    assert rows[0]["campaign"] == "c" and rows[0]["head"].startswith("PersonX")
    lines = b"".join(
        judgment_export_chunks(campaign=campaign, fmt="jsonl", aggregated=True)
    ).splitlines()
    aggregated = [orjson.loads(line) for line in lines]
    assert len(aggregated) == 2
    assert all(row["majority"] is True and row["judgments"] == 2 for row in aggregated)


def test_undo_makes_the_last_aggregation_stale(corpus, annotators):
    from annotation.selectors import campaign_stats_stale
    from annotation.services.judgments import judgment_undo

    campaign = campaign_create(corpus=corpus, name="c", size=3, gold_share=0.0)
    judge_everything(campaign, annotators[:2], lambda who, item: 1)
    campaign_aggregate(campaign=campaign)
    assert not campaign_stats_stale(campaign=campaign)
    judgment_undo(campaign=campaign, annotator=annotators[0])
    campaign.refresh_from_db()
    assert campaign_stats_stale(campaign=campaign)
