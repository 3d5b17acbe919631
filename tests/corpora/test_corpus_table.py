"""The corpus page's triple table: pages both ways and the count of matches."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from corpora import views
from corpora.models import Corpus, Triple
from corpora.services import corpus_refresh_counts
from tests.factories import CorpusFactory, EventFactory, TripleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def big_corpus() -> Corpus:
    """120 triples, one head in ten about baking; every third one in split test."""
    corpus = CorpusFactory(name="big")
    for i in range(120):
        head = EventFactory(text=f"PersonX bakes cake {i}" if i % 10 == 0 else f"PersonX runs {i}")
        split = "test" if i % 3 == 0 else "train"
        TripleFactory(corpus=corpus, head=head, tail=f"tail number {i:03d}", split=split)
    corpus_refresh_counts(corpus=corpus)
    return corpus


def tails(html: str) -> list[str]:
    """The tails in the triple table (the page's samples hold some too)."""
    table = html.split('id="triple-table"', 1)[1].split('id="export"', 1)[0]
    return re.findall(r"tail number (\d{3})", table)


def link(html: str, rel: str) -> str:
    """The query string of the pager's link with this rel."""
    found = re.search(rf'<a class="button" href="\?([^"#]*)#triples"[^>]*rel="{rel}"', html, re.S)
    return found.group(1).replace("&amp;", "&") if found else ""


def test_previous_goes_back_a_page_and_the_first_page_has_none(researcher_client, big_corpus):
    url = reverse("corpora:corpus_detail", args=[big_corpus.pk])
    first = researcher_client.get(url).content.decode()
    assert tails(first) == [f"{i:03d}" for i in range(50)]
    assert link(first, "prev") == ""

    second = researcher_client.get(f"{url}?{link(first, 'next')}", HTTP_HX_REQUEST="true")
    second = second.content.decode()
    assert tails(second) == [f"{i:03d}" for i in range(50, 100)]
    third = researcher_client.get(f"{url}?{link(second, 'next')}", HTTP_HX_REQUEST="true")
    third = third.content.decode()
    assert tails(third) == [f"{i:03d}" for i in range(100, 120)]
    assert link(third, "next") == ""

    back = researcher_client.get(f"{url}?{link(third, 'prev')}", HTTP_HX_REQUEST="true")
    back = back.content.decode()
    assert tails(back) == tails(second)
    assert link(back, "next") == link(second, "next")
    again = researcher_client.get(f"{url}?{link(back, 'prev')}", HTTP_HX_REQUEST="true")
    again = again.content.decode()
    assert tails(again) == tails(first)
    assert link(again, "prev") == ""  # back on the first page
    assert "First page" not in again


def test_previous_keeps_the_filters(researcher_client, big_corpus):
    url = reverse("corpora:corpus_detail", args=[big_corpus.pk])
    first = researcher_client.get(url, {"q": "runs", "split": "train"}).content.decode()
    second = researcher_client.get(f"{url}?{link(first, 'next')}").content.decode()
    previous = link(second, "prev")
    assert previous.startswith("q=runs&split=train&before=")
    back = researcher_client.get(f"{url}?{previous}").content.decode()
    assert tails(back) == tails(first) and len(tails(first)) == 50


def test_a_page_before_the_first_triple_is_the_first_page(researcher_client, big_corpus):
    url = reverse("corpora:corpus_detail", args=[big_corpus.pk])
    first_id = Triple.objects.filter(corpus=big_corpus).order_by("id").first().pk
    html = researcher_client.get(url, {"before": first_id}).content.decode()
    assert tails(html) == [f"{i:03d}" for i in range(50)]
    assert link(html, "prev") == "" and link(html, "next")


def test_count_without_a_filter_comes_from_the_stored_counts(researcher_client, big_corpus):
    url = reverse("corpora:corpus_detail", args=[big_corpus.pk])
    table = Triple._meta.db_table
    for params, expected in (
        ({}, "120 triples"),
        ({"split": "test"}, "40 triples match these filters"),
        ({"relation": "xNeed", "split": "train"}, "80 triples match these filters"),
    ):
        with CaptureQueriesContext(connection) as queries:
            html = researcher_client.get(url, params, HTTP_HX_REQUEST="true").content.decode()
        count = re.search(r'id="triple-count">(.*?)</p>', html, re.S).group(1)
        assert count.strip() == expected, params
        counted = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and table in q["sql"]]
        assert counted == [], params


def test_a_head_search_is_counted_exactly_up_to_a_bound(researcher_client, big_corpus, monkeypatch):
    url = reverse("corpora:corpus_detail", args=[big_corpus.pk])
    html = researcher_client.get(url, {"q": "bakes cake"}, HTTP_HX_REQUEST="true").content
    assert "12 triples match these filters" in html.decode()
    html = researcher_client.get(url, {"q": "cake 20", "split": "train"}).content.decode()
    assert "1 triple matches these filters" in html

    monkeypatch.setattr(views, "COUNT_BOUND", 100)
    html = researcher_client.get(url, {"q": "runs"}, HTTP_HX_REQUEST="true").content.decode()
    assert "More than 100 triples match these filters" in html
    assert "(counted up to 100)" in html
    html = researcher_client.get(url, {"q": "bakes"}, HTTP_HX_REQUEST="true").content.decode()
    assert "12 triples match these filters" in html


def test_the_filters_do_not_share_ids_with_the_export_form(researcher_client, big_corpus):
    html = researcher_client.get(reverse("corpora:corpus_detail", args=[big_corpus.pk]))
    ids = re.findall(r'\sid="([^"]+)"', html.content.decode())
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
