"""A closed campaign no longer changes: an answer or an undo on a lease held when it was
closed is refused, with the same clear message through the API and the page."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Assignment, Campaign, Item, Judgment
from annotation.services.campaigns import campaign_create, campaign_set_status
from tests.annotation.conftest import add_members, make_corpus

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def campaign() -> Campaign:
    campaign = campaign_create(corpus=make_corpus(10), name="c", size=6, gold_share=0.0, seed=1)
    add_members(campaign)
    return campaign


@pytest.fixture
def api(annotator) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    return client


def close(campaign: Campaign) -> None:
    campaign_set_status(campaign=campaign, status=Campaign.Status.CLOSED)


def counts(campaign: Campaign) -> tuple:
    items = Item.objects.filter(campaign=campaign).order_by("pk")
    return (
        Judgment.objects.filter(campaign=campaign).count(),
        list(items.values_list("judgment_count", "slots_free")),
        list(Assignment.objects.filter(campaign=campaign).values_list("status", flat=True)),
    )


def test_an_answer_on_a_lease_held_when_the_campaign_closed_is_refused_by_the_api(api, campaign):
    lease = api.post(f"/api/campaigns/{campaign.pk}/next/").json()["assignment_id"]
    close(campaign)
    before = counts(campaign)
    response = api.post(f"/api/assignments/{lease}/judgment/", {"value": 2})
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Campaign 'c' is closed: your answer was not stored.",
        "code": "campaign_closed",
    }
    assert counts(campaign) == before


def test_an_undo_after_the_campaign_closed_is_refused_by_the_api(api, campaign, annotator):
    lease = api.post(f"/api/campaigns/{campaign.pk}/next/").json()["assignment_id"]
    assert api.post(f"/api/assignments/{lease}/judgment/", {"value": 2}).status_code == 201
    close(campaign)
    before = counts(campaign)
    response = api.post(f"/api/campaigns/{campaign.pk}/undo/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Campaign 'c' is closed: its judgments can no longer be undone.",
        "code": "campaign_closed",
    }
    assert counts(campaign) == before
    assert Judgment.objects.get(annotator=annotator).value == 2


def test_a_repeat_of_an_answer_stored_before_closing_still_says_it_stands(api, campaign):
    """A client that lost the first response and sends it again learns it was stored."""
    lease = api.post(f"/api/campaigns/{campaign.pk}/next/").json()["assignment_id"]
    assert api.post(f"/api/assignments/{lease}/judgment/", {"value": 1}).status_code == 201
    close(campaign)
    again = api.post(f"/api/assignments/{lease}/judgment/", {"value": -1})
    assert again.status_code == 200 and again.json()["value"] == 1


def test_the_annotator_page_refuses_an_answer_and_an_undo_once_closed(
    annotator_client, annotator, campaign
):
    url = reverse("annotation:judge", args=[campaign.pk])
    annotator_client.get(url)  # the page leases an item
    first = Assignment.objects.get(annotator=annotator, status=Assignment.Status.LEASED)
    annotator_client.post(url, {"assignment": first.pk, "value": 2}, **HTMX)
    second = Assignment.objects.get(annotator=annotator, status=Assignment.Status.LEASED)
    close(campaign)
    before = counts(campaign)

    html = annotator_client.post(url, {"assignment": second.pk, "value": 1}, **HTMX).text
    assert "Campaign &#x27;c&#x27; is closed: your answer was not stored." in html
    html = annotator_client.post(url, {"action": "undo"}, **HTMX).text
    assert "Campaign &#x27;c&#x27; is closed: its judgments can no longer be undone." in html
    # Without htmx: the message comes back on the page after the redirect.
    response = annotator_client.post(url, {"assignment": second.pk, "value": 1})
    assert response.status_code == 302
    assert "your answer was not stored" in annotator_client.get(url).text

    assert counts(campaign) == before
    assert list(Judgment.objects.values_list("assignment_id", "value")) == [(first.pk, 2)]
