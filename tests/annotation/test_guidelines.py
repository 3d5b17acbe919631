"""The judging page's guidelines (issue 17, item 3): the paper's scale with "can't judge",
an example per answer for each relation of the campaign, templates rendered readably, open
on the first visit and collapsible after."""

import re

import pytest
from django.urls import reverse

from annotation.guidelines import EXAMPLES, SCALE, relation_examples
from annotation.services.campaigns import campaign_create
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from annotation.services.membership import member_add
from corpora.models import Relation
from corpora.relations import ATOMIC_2020_RELATIONS
from tests.annotation.conftest import make_corpus

pytestmark = pytest.mark.django_db

LABELS = ["always/often", "sometimes/likely", "farfetched/never", "invalid", "can't judge"]


def guidelines_of(page: str) -> str:
    return re.search(r'<details class="card" id="guidelines".*?</details>', page, re.S).group(0)


def test_every_atomic_2020_relation_has_an_example_per_answer():
    assert [point["label"] for point in SCALE] == LABELS
    for spec in ATOMIC_2020_RELATIONS:
        head, tails = EXAMPLES[spec["name"]]
        assert head and len(tails) == len(SCALE)


def test_an_unknown_relation_gets_the_generic_example():
    odd = Relation(name="myRelation", sentence_template="{head} leads to: {tail}")
    (guide,) = relation_examples(relations=[odd])
    assert guide.generic
    assert [e["label"] for e in guide.examples] == LABELS
    assert guide.reads_as == "[the event] leads to: [the answer]"


def test_the_page_explains_the_scale_per_relation_open_on_the_first_visit(
    annotator, annotator_client
):
    corpus = make_corpus(40, relations=("xNeed", "xWant"))
    campaign = campaign_create(corpus=corpus, name="g", size=10, gold_share=0.0, seed=1)
    member_add(campaign=campaign, annotator=annotator)
    url = reverse("annotation:judge", args=[campaign.pk])
    page = annotator_client.get(url).content.decode().replace("&#x27;", "'")
    panel = guidelines_of(page)
    assert panel.startswith('<details class="card" id="guidelines" open>')
    assert "{tail}" not in panel and "{head}" not in panel
    for label in LABELS:
        assert label in panel
    for name in ("xNeed", "xWant"):
        assert f'data-relation="{name}"' in panel
    assert "PersonX goes fishing. Before that, PersonX needed: a fishing rod" in panel
    assert "PersonX finishes the marathon. As a result, PersonX wants: to rest" in panel
    assert "Reads as: <em>[the event]. Before that, PersonX needed: [the answer]</em>" in panel
    assert 'data-relation="oReact"' not in panel  # only the campaign's relations

    lease = assignment_next(campaign=campaign, annotator=annotator)
    judgment_submit(assignment_id=lease.pk, annotator=annotator, value=2)
    panel = guidelines_of(annotator_client.get(url).content.decode())
    assert panel.startswith('<details class="card" id="guidelines">')  # closed, still there
