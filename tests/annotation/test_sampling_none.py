"""ATOMIC's "none" tails (no inference) are not triples to judge: an import may keep them
(--keep-none), but a campaign never asks about them."""

import pytest

from annotation.models import Item
from annotation.services import campaign_create
from generation.models import Corpus, Triple
from generation.services import corpus_import

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
