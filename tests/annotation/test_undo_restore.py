"""Undo brings back the earlier answer and offensive flag into the form; a closed
campaign's judging page says it is closed and offers no judging and no undo (issue 17,
item 8)."""

import re

import pytest
from django.urls import reverse

from annotation.models import Assignment
from annotation.services.campaigns import campaign_create, campaign_set_status
from annotation.services.membership import member_add
from tests.annotation.conftest import make_corpus

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def campaign(annotator):
    corpus = make_corpus(40)
    campaign = campaign_create(corpus=corpus, name="u", size=10, gold_share=0.0, seed=1)
    member_add(campaign=campaign, annotator=annotator)
    return campaign


def url(campaign):
    return reverse("annotation:judge", args=[campaign.pk])


def answer(client, campaign, annotator, value, flagged=False):
    client.get(url(campaign))
    lease = Assignment.objects.filter(annotator=annotator, status="leased").latest("pk")
    data = {"assignment": lease.pk, "value": value}
    if flagged:
        data["flagged"] = "1"
    client.post(url(campaign), data, **HTMX)
    return lease


def selected_value(card: str) -> str | None:
    for button in re.findall(r"<button[^>]*>", card):
        if "answer-previous" in button and 'aria-pressed="true"' in button:
            return re.search(r'value="(-?\d+)"', button).group(1)
    return None


def flag_checked(card: str) -> bool:
    return bool(re.search(r'<input type="checkbox" name="flagged"[^>]*checked', card))


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain-post"])
def test_undo_shows_the_earlier_answer_and_flag(campaign, annotator, annotator_client, htmx):
    lease = answer(annotator_client, campaign, annotator, -1, flagged=True)
    response = annotator_client.post(url(campaign), {"action": "undo"}, **(HTMX if htmx else {}))
    if not htmx:
        response = annotator_client.get(url(campaign))
    card = response.content.decode()
    assert f'name="assignment" value="{lease.pk}"' in card
    assert selected_value(card) == "-1"
    assert flag_checked(card)
    assert "farfetched/never and flagged as offensive" in card.replace("&#x27;", "'")
    # Answered again, the next item starts blank.
    card = annotator_client.post(
        url(campaign), {"assignment": lease.pk, "value": 2}, **HTMX
    ).content.decode()
    assert selected_value(card) is None and not flag_checked(card)


def test_undo_of_an_unflagged_answer_leaves_the_box_unticked(campaign, annotator, annotator_client):
    answer(annotator_client, campaign, annotator, 2)
    card = annotator_client.post(url(campaign), {"action": "undo"}, **HTMX).content.decode()
    assert selected_value(card) == "2"
    assert not flag_checked(card)


def test_a_closed_campaigns_page_offers_no_judging_and_no_undo(
    campaign, annotator, annotator_client
):
    answer(annotator_client, campaign, annotator, 2)
    campaign_set_status(campaign=campaign, status="closed")
    page = annotator_client.get(url(campaign)).content.decode()
    assert "This campaign is closed" in page
    assert 'value="undo"' not in page
    assert 'name="value"' not in page
    card = annotator_client.post(url(campaign), {"action": "undo"}, **HTMX).content.decode()
    assert "This campaign is closed" in card
    assert 'value="undo"' not in card
