import csv
import io
import random
from collections import Counter

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from annotation.management.commands.simulate_annotators import FLIP
from annotation.models import Campaign, CampaignAnnotator, Item, Judgment
from annotation.selectors import AGGREGATE_EXPORT_FIELDS, JUDGMENT_EXPORT_FIELDS
from annotation.services.aggregation import campaign_aggregate
from annotation.services.campaigns import campaign_create, campaign_set_status
from core.roles import is_annotator
from corpora.models import Corpus
from corpora.services import corpus_import
from tests.annotation.conftest import make_corpus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def labels_for(corpus: Corpus, seed: int = 0, skip_every: int = 0) -> dict[tuple, int]:
    """A known label for each triple of the corpus (leaving every n-th one out)."""
    rng = random.Random(seed)
    labels = {}
    triples = corpus.triple_set.select_related("head", "relation").order_by("id")
    for n, t in enumerate(triples):
        if skip_every and n % skip_every == 0:
            continue
        labels[(t.head.text, t.relation.name, t.tail)] = rng.choice((2, 1, -1, -2))
    return labels


def write_labels(path, labels: dict[tuple, int], variant: bool = False) -> None:
    """As an SKD release writes them; `variant` changes case and spacing of the tails."""
    with open(path, "wb") as out:
        for (head, relation, tail), valid in labels.items():
            if variant:
                tail = f"  {tail.upper()}. "
            row = {"head": head, "relation": relation, "tail": tail, "split": "train"}
            out.write(orjson.dumps({**row, "p_valid_model": 0.5, "valid": valid}) + b"\n")


def value_of_items(campaign) -> dict[int, tuple]:
    return {
        pk: (head, relation, tail)
        for pk, head, relation, tail in Item.objects.filter(campaign=campaign).values_list(
            "pk", "head__text", "relation__name", "tail"
        )
    }


# --- create_campaign -------------------------------------------------------------------


def test_create_campaign_prints_a_summary():
    make_corpus(40, name="teacher")
    out = run(
        "create_campaign",
        "--corpus=teacher",
        "--name=first look",
        "--size=20",
        "--k=2",
        "--sampling=relation",
        "--gold-share=0.2",
        "--lease-seconds=120",
        "--seed=7",
    )
    campaign = Campaign.objects.get(name="first look")
    assert (campaign.item_count, campaign.judgments_per_item, campaign.seed) == (20, 2, 7)
    assert (campaign.sampling, campaign.lease_seconds, campaign.gold_share) == (
        "relation",
        120,
        0.2,
    )
    assert campaign.gold_count > 0
    assert "'first look'" in out and "20 items" in out
    assert f"{campaign.gold_count} gold" in out and "2 judgments each" in out
    assert "created in" in out and out.rstrip().endswith(" s")


def test_create_campaign_with_a_gold_reference(tmp_path):
    make_corpus(40, name="teacher")
    reference = tmp_path / "gold.tsv"
    reference.write_text("".join(f"PersonX swims {i}\txWant\tto get dry {i}\n" for i in range(30)))
    run(
        "create_campaign",
        "--corpus=teacher",
        "--name=g",
        "--size=20",
        f"--gold-reference={reference}",
    )
    sources = Counter(
        Item.objects.filter(campaign__name="g", is_gold=True).values_list("gold_source", flat=True)
    )
    assert sources["reference"] > 0 and sources["swap"] > 0


def test_create_campaign_errors_name_what_is_wrong(tmp_path):
    make_corpus(10, name="teacher")
    with pytest.raises(CommandError, match="No corpus named 'nope' \\(corpora: teacher\\)"):
        run("create_campaign", "--corpus=nope", "--name=x", "--size=3")
    with pytest.raises(CommandError, match="missing.tsv: no such file"):
        run(
            "create_campaign",
            "--corpus=teacher",
            "--name=x",
            "--size=3",
            f"--gold-reference={tmp_path / 'missing.tsv'}",
        )
    with pytest.raises(CommandError, match="greater than or equal to 1"):
        run("create_campaign", "--corpus=teacher", "--name=x", "--size=0")
    with pytest.raises(CommandError, match="needs critic scores"):
        run("create_campaign", "--corpus=teacher", "--name=x", "--size=3", "--sampling=score")
    run("create_campaign", "--corpus=teacher", "--name=x", "--size=3")
    with pytest.raises(CommandError, match="name"):
        run("create_campaign", "--corpus=teacher", "--name=x", "--size=3")
    assert Campaign.objects.count() == 1


# --- simulate_annotators -------------------------------------------------------------


def test_simulated_annotators_answer_from_the_labels_until_nothing_is_left(tmp_path):
    corpus = make_corpus(30)
    labels = labels_for(corpus)
    path = tmp_path / "labels.jsonl"
    write_labels(path, labels, variant=True)  # matched on the normalized tail
    campaign_create(corpus=corpus, name="sim", size=12, gold_share=0.0, seed=1)

    out = run("simulate_annotators", "sim", "--annotators=4", f"--labels={path}", "--noise=0")
    campaign = Campaign.objects.get(name="sim")
    assert Judgment.objects.filter(campaign=campaign).count() == 36
    assert "36 judgments by 4 simulated annotators" in out
    assert "judgments/s" in out and "0 at random" in out
    assert "36 of 36 judgments (100.0%)" in out
    text = value_of_items(campaign)
    for item_id, value in Judgment.objects.values_list("item_id", "value"):
        assert value == labels[text[item_id]]
    users = get_user_model().objects.filter(username__startswith="sim-annotator-")
    assert sorted(u.username for u in users) == [f"sim-annotator-{n}" for n in range(1, 5)]
    assert all(is_annotator(u) and not u.has_usable_password() for u in users)
    counts = Counter(Judgment.objects.values_list("annotator__username", flat=True))
    assert set(counts.values()) == {9}  # round-robin: everyone judged as much


def test_noise_flips_answers_and_unknown_triples_get_random_ones(tmp_path):
    corpus = make_corpus(30)
    labels = labels_for(corpus, skip_every=3)
    path = tmp_path / "labels.jsonl"
    write_labels(path, labels)
    campaign = campaign_create(
        corpus=corpus, name="noisy", size=30, gold_share=0.0, seed=1, judgments_per_item=1
    )
    out = run("simulate_annotators", "noisy", "--annotators=2", f"--labels={path}", "--noise=1")
    text = value_of_items(campaign)
    known = unknown = 0
    for item_id, value in Judgment.objects.values_list("item_id", "value"):
        if text[item_id] in labels:
            assert value == FLIP[labels[text[item_id]]]
            known += 1
        else:
            unknown += 1
    assert (known, unknown) == (20, 10)
    assert "20 from the labels file or gold (20 flipped), 10 at random" in out


def test_gold_is_answered_as_well_as_the_rest_so_careful_annotators_stay(tmp_path):
    corpus = make_corpus(40)
    path = tmp_path / "labels.jsonl"
    write_labels(path, labels_for(corpus))
    campaign = campaign_create(
        corpus=corpus, name="gold", size=20, gold_share=0.5, gold_min_answers=2, seed=3
    )
    run("simulate_annotators", "gold", "--annotators=3", f"--labels={path}", "--seed=1")
    standings = CampaignAnnotator.objects.filter(campaign=campaign)
    assert standings.count() == 3
    assert all(s.gold_answered > 0 and s.gold_correct == s.gold_answered for s in standings)
    assert not any(s.paused for s in standings)
    assert Item.objects.filter(campaign=campaign, is_gold=False, judgment_count=3).count() == 20

    # Careless ones (every answer flipped) are paused by the gold rule and say so.
    careless = campaign_create(
        corpus=corpus, name="careless", size=20, gold_share=0.5, gold_min_answers=2, seed=4
    )
    out = run("simulate_annotators", "careless", "--annotators=2", f"--labels={path}", "--noise=1")
    assert "paused by their gold answers: sim-annotator-1, sim-annotator-2" in out
    assert all(s.paused for s in CampaignAnnotator.objects.filter(campaign=careless))


def test_stop_after_a_number_of_judgments_or_seconds_and_users_are_reused(tmp_path):
    corpus = make_corpus(40)
    path = tmp_path / "labels.jsonl"
    write_labels(path, labels_for(corpus))
    campaign_create(corpus=corpus, name="s", size=30, gold_share=0.0, seed=1)
    out = run("simulate_annotators", "s", "--annotators=3", f"--labels={path}", "--judgments=7")
    assert out.startswith("7 judgments by 3 simulated annotators")
    assert Judgment.objects.count() == 7
    run("simulate_annotators", "s", "--annotators=3", f"--labels={path}", "--seconds=0.000001")
    assert Judgment.objects.count() <= 8
    run("simulate_annotators", "s", "--annotators=3", f"--labels={path}", "--judgments=5")
    assert Judgment.objects.count() >= 12
    users = get_user_model().objects.filter(username__startswith="sim-annotator-")
    assert users.count() == 3


def test_simulate_errors_name_what_is_wrong(tmp_path):
    corpus = make_corpus(10)
    campaign_create(corpus=corpus, name="s", size=3, gold_share=0.0, seed=1)
    good = tmp_path / "good.jsonl"
    write_labels(good, labels_for(corpus))
    with pytest.raises(CommandError, match="No campaign named 'nope' \\(campaigns: s\\)"):
        run("simulate_annotators", "nope", f"--labels={good}")
    with pytest.raises(CommandError, match="missing.jsonl: no such file"):
        run("simulate_annotators", "s", f"--labels={tmp_path / 'missing.jsonl'}")

    bad = tmp_path / "bad.jsonl"
    row = {"head": "PersonX naps", "relation": "xNeed", "tail": "a bed", "valid": 2}
    bad.write_bytes(orjson.dumps(row) + b"\n\n" + b"{not json\n")
    with pytest.raises(CommandError, match="bad.jsonl, line 3: not valid JSON"):
        run("simulate_annotators", "s", f"--labels={bad}")
    bad.write_bytes(orjson.dumps(row) + b"\n" + orjson.dumps({**row, "valid": 3}) + b"\n")
    with pytest.raises(CommandError, match="line 2: valid is 3, not one of 2, 1, -1, -2, -9"):
        run("simulate_annotators", "s", f"--labels={bad}")
    bad.write_bytes(orjson.dumps({"head": "PersonX naps", "valid": 1}) + b"\n")
    with pytest.raises(CommandError, match="line 1: missing relation, tail"):
        run("simulate_annotators", "s", f"--labels={bad}")

    with pytest.raises(CommandError, match="--noise is a share between 0 and 1"):
        run("simulate_annotators", "s", f"--labels={good}", "--noise=1.5")
    with pytest.raises(CommandError, match="not allowed with argument"):
        run("simulate_annotators", "s", f"--labels={good}", "--seconds=1", "--judgments=2")
    if connection.vendor == "sqlite":
        with pytest.raises(CommandError, match="--threads needs PostgreSQL"):
            run("simulate_annotators", "s", f"--labels={good}", "--threads")
    campaign_set_status(campaign=Campaign.objects.get(name="s"), status="closed")
    with pytest.raises(CommandError, match="Campaign 's' is closed"):
        run("simulate_annotators", "s", f"--labels={good}")
    assert not Judgment.objects.exists()


def test_threaded_simulation_on_postgresql(transactional_db, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("threads are for PostgreSQL only")
    corpus = make_corpus(40)
    path = tmp_path / "labels.jsonl"
    write_labels(path, labels_for(corpus))
    campaign_create(corpus=corpus, name="t", size=20, gold_share=0.5, seed=1)
    out = run("simulate_annotators", "t", "--annotators=6", f"--labels={path}", "--threads")
    gold = Judgment.objects.filter(item__is_gold=True).count()
    assert gold > 0
    assert f"{60 + gold} judgments by 6 simulated annotators" in out
    assert "60 of 60 judgments (100.0%), 20 of 20 items complete" in out
    assert set(Item.objects.filter(is_gold=False).values_list("judgment_count", flat=True)) == {3}


# --- export_judgments ------------------------------------------------------------------


@pytest.fixture
def judged(tmp_path):
    corpus = make_corpus(20)
    path = tmp_path / "labels.jsonl"
    write_labels(path, labels_for(corpus))
    campaign_create(corpus=corpus, name="judged one", size=5, gold_share=0.0, seed=1)
    run("simulate_annotators", "judged one", "--annotators=3", f"--labels={path}")
    return Campaign.objects.get(name="judged one")


def test_export_judgments_to_files(judged, tmp_path):
    target = tmp_path / "out.jsonl"
    out = run("export_judgments", "judged one", "--format=jsonl", f"--out={target}")
    rows = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert len(rows) == 15 and set(rows[0]) == set(JUDGMENT_EXPORT_FIELDS)
    assert {r["campaign"] for r in rows} == {"judged one"}
    assert f"15 judgments of 'judged one' as jsonl to {target}" in out

    table = tmp_path / "out.csv"
    run("export_judgments", "judged one", "--format=csv", f"--out={table}")
    parsed = list(csv.reader(io.StringIO(table.read_text())))
    assert parsed[0] == list(JUDGMENT_EXPORT_FIELDS) and len(parsed) == 16

    campaign_aggregate(campaign=judged)
    labels = tmp_path / "labels.csv"
    out = run("export_judgments", "judged one", "--format=csv", "--aggregated", f"--out={labels}")
    parsed = list(csv.reader(io.StringIO(labels.read_text())))
    assert parsed[0] == list(AGGREGATE_EXPORT_FIELDS) and len(parsed) == 6
    assert "5 item labels" in out


def test_export_judgments_to_stdout(judged):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "export_judgments", "judged one", "--format=jsonl", "--out=-", stdout=out, stderr=err
    )
    rows = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 15
    assert "15 judgments of 'judged one' as jsonl to standard output" in err.getvalue()

    out = io.StringIO()
    call_command(
        "export_judgments",
        "judged one",
        "--format=csv",
        "--aggregated",
        "--out=-",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert out.getvalue().splitlines()[0] == ",".join(AGGREGATE_EXPORT_FIELDS)


def test_export_judgments_errors(judged, tmp_path):
    with pytest.raises(CommandError, match="No campaign named 'nope'"):
        run("export_judgments", "nope", "--out=-")
    with pytest.raises(CommandError, match="Cannot write"):
        run("export_judgments", "judged one", f"--out={tmp_path / 'no' / 'such' / 'dir.jsonl'}")
    with pytest.raises(CommandError, match="invalid choice: 'parquet'"):
        run("export_judgments", "judged one", "--format=parquet", "--out=-")


# --- import_labels -------------------------------------------------------------------


def test_import_labels_from_an_skd_release(tmp_path):
    path = tmp_path / "release.jsonl"
    rows = [
        ("PersonX naps", "xNeed", "a bed", 2),
        ("PersonX naps", "xWant", "to wake up", 1),
        ("PersonX naps", "xEffect", "is rested", -1),
        ("PersonX bakes", "xNeed", "flour", -9),
    ]
    path.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "head": h,
                    "relation": r,
                    "tail": t,
                    "split": "train",
                    "p_valid_model": 0.5,
                    "valid": v,
                }
            )
            + b"\n"
            for h, r, t, v in rows
        )
    )
    corpus_import(path=path, corpus_name="release")
    out = run("import_labels", "--corpus=release")
    campaign = Campaign.objects.get(name="imported: release")
    assert campaign.status == Campaign.Status.CLOSED
    assert sorted(Judgment.objects.filter(campaign=campaign).values_list("value", flat=True)) == [
        -9,
        -1,
        1,
        2,
    ]
    assert set(Judgment.objects.values_list("annotator__username", flat=True)) == {"imported"}
    assert "'imported: release'" in out and "4 triples with imported labels" in out
    assert "66.7% acceptable" in out

    run("import_labels", "--corpus=release", "--name=again")
    assert Campaign.objects.filter(name="again").exists()
    with pytest.raises(CommandError, match="'again' already exists"):
        run("import_labels", "--corpus=release", "--name=again")


def test_import_labels_errors():
    with pytest.raises(CommandError, match="No corpus named 'nope'"):
        run("import_labels", "--corpus=nope")
    make_corpus(5, name="plain")
    with pytest.raises(CommandError, match="has no triples with a `valid` label"):
        run("import_labels", "--corpus=plain")
