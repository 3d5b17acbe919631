"""The dataset card of a filtered export: named after the export (demo.card.md beside
demo.jsonl), counts by split and by relation and split, served as a Markdown download."""

import orjson
import pytest
from django.urls import reverse

from corpora.models import Triple
from corpora.services import corpus_export_job_run
from critic.services.presets import preset_export, preset_export_job_create, preset_save
from critic.services.scoring import corpus_rescore
from critic.services.training import critic_train
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def preset(labelled_corpus):
    version = critic_train(corpus=labelled_corpus, queue_rescore=False)
    corpus_rescore(corpus=labelled_corpus)
    return preset_save(
        corpus=labelled_corpus,
        name="strict",
        version=version,
        threshold=0.4,
        relation_thresholds={"xNeed": 0.7},
    )


def kept_counts(corpus) -> dict[tuple[str, str], int]:
    """What the preset keeps, counted from the triples one by one."""
    counts: dict[tuple[str, str], int] = {}
    triples = Triple.objects.filter(corpus=corpus).with_score(corpus)
    for relation, split, score in triples.values_list("relation__name", "split", "score"):
        if score is not None and score >= (0.7 if relation == "xNeed" else 0.4):
            counts[relation, split] = counts.get((relation, split), 0) + 1
    return counts


def test_the_card_is_named_after_the_export_and_counts_by_split(preset, tmp_path):
    tmp_path = tmp_path / "out"  # the test's folder holds the artifacts too
    tmp_path.mkdir()
    summary, card = preset_export(preset=preset, fmt="jsonl", out_path=tmp_path / "demo.jsonl")
    assert card == tmp_path / "demo.card.md"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "demo.card.json",
        "demo.card.md",
        "demo.jsonl",
    ]
    expected = kept_counts(preset.corpus)
    assert sum(expected.values()) == summary.rows
    splits = sorted({split for _, split in expected}, key=["train", "val", "test"].index)

    data = orjson.loads((tmp_path / "demo.card.json").read_bytes())
    by_split = data["counts"]["by_split"]
    assert list(by_split) == splits
    for split in splits:
        assert by_split[split] == sum(n for (_, s), n in expected.items() if s == split)
    for (relation, split), n in expected.items():
        assert data["counts"]["by_relation_and_split"][relation][split] == n

    markdown = card.read_text(encoding="utf-8")
    assert "## Counts by split" in markdown and "## Counts by relation and split" in markdown
    for split in splits:
        assert f"| {split} | {by_split[split]:,} |" in markdown
    assert f"| all | {summary.rows:,} |" in markdown
    need = data["counts"]["by_relation_and_split"]["xNeed"]
    row = " | ".join(f"{need[split]:,}" for split in splits)
    assert f"| xNeed | {row} | {sum(need.values()):,} |" in markdown


@pytest.mark.parametrize(
    ("export", "card"),
    [("kept.tsv", "kept.card.md"), ("kept.csv.gz", "kept.card.md"), ("v1.2", "v1.2.card.md")],
)
def test_card_names(export, card, tmp_path):
    from critic.cards import card_paths

    markdown, json_path = card_paths(tmp_path / export)
    assert markdown.name == card and json_path.name == card.replace(".md", ".json")


def test_the_card_downloads_as_markdown(researcher_client, preset):
    job = preset_export_job_create(preset=preset, fmt="jsonl")
    corpus_export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error

    response = researcher_client.get(reverse("jobs:job_card", args=[job.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="demo.card.md"'
    text = b"".join(response.streaming_content).decode()
    assert text.startswith("# demo: filtered by preset 'strict'")
    assert "## Counts by split" in text
