"""ATOMIC's "none" tails (no inference) are not triples to judge: an import may keep them
(--keep-none), but a campaign never asks about them."""

import pytest

from annotation.models import Item
from annotation.services.campaigns import campaign_create
from corpora.models import Corpus, Triple
from corpora.services import corpus_import

pytestmark = pytest.mark.django_db


def test_a_campaign_leaves_none_tails_out(tmp_path):
    path = tmp_path / "atomic.tsv"
    lines = [f"PersonX does {i}\txNeed\tnone\n" for i in range(20)]
    lines += [f"PersonX does {i}\txWant\tNone.\n" for i in range(20)]
    lines += [f"PersonX does {i}\txNeed\tto get thing {i}\n" for i in range(5)]
    path.write_text("".join(lines))
    corpus_import(path=path, corpus_name="atomic", drop_none=False)
    assert Triple.objects.filter(corpus__name="atomic").count() == 45
    campaign = campaign_create(
        corpus=Corpus.objects.get(name="atomic"), name="c", size=45, gold_share=0.0, seed=3
    )
    tails = set(Item.objects.filter(campaign=campaign).values_list("tail", flat=True))
    assert tails == {f"to get thing {i}" for i in range(5)}


def test_gold_from_a_reference_file_leaves_none_tails_out(tmp_path):
    corpus_path = tmp_path / "corpus.tsv"
    corpus_path.write_text(
        "".join(f"PersonX eats {i}\txNeed\tto buy food {i}\n" for i in range(30))
    )
    corpus_import(path=corpus_path, corpus_name="c")
    reference = tmp_path / "reference.tsv"
    lines = [f"PersonX runs {i}\txNeed\tnone\n" for i in range(40)]
    lines += [f"PersonX runs {i}\txNeed\tto put on shoes {i}\n" for i in range(4)]
    reference.write_text("".join(lines))
    campaign = campaign_create(
        corpus=Corpus.objects.get(name="c"),
        name="gold",
        size=20,
        gold_share=0.2,
        gold_reference=reference,
        gold_count=4,
        seed=5,
    )
    gold_tails = list(
        Item.objects.filter(campaign=campaign, is_gold=True).values_list("tail", flat=True)
    )
    assert gold_tails
    assert all(tail.lower() != "none" for tail in gold_tails)
