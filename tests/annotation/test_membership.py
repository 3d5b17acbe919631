"""Membership: an annotator sees and judges only the campaigns they belong to; researchers
judge any; the annotators page shows each one's record and deactivates and reinstates."""

import importlib
import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.errors import NotMember
from annotation.models import CampaignAnnotator, Judgment
from annotation.services.campaigns import campaign_create, campaign_set_status
from annotation.services.judgments import judgment_submit, judgment_undo
from annotation.services.leasing import assignment_next
from annotation.services.membership import member_add
from annotation.services.standing import annotator_pause
from tests.annotation.conftest import make_corpus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def two(db):
    corpus = make_corpus(20)
    mine = campaign_create(corpus=corpus, name="mine", size=5, gold_share=0.0, seed=1)
    theirs = campaign_create(corpus=corpus, name="theirs", size=5, gold_share=0.0, seed=2)
    return mine, theirs


def test_only_members_judge_and_researchers_join_on_their_first_visit(two, annotator, researcher):
    mine, theirs = two
    with pytest.raises(NotMember):
        assignment_next(campaign=mine, annotator=annotator)
    member_add(campaign=mine, annotator=annotator)
    lease = assignment_next(campaign=mine, annotator=annotator)
    judgment_submit(assignment_id=lease.pk, annotator=annotator, value=2)
    with pytest.raises(NotMember):
        assignment_next(campaign=theirs, annotator=annotator)
    with pytest.raises(NotMember):
        judgment_undo(campaign=theirs, annotator=annotator)
    assert assignment_next(campaign=theirs, annotator=researcher) is not None
    assert CampaignAnnotator.objects.filter(campaign=theirs, annotator=researcher).exists()


def test_the_home_page_and_the_api_list_only_their_campaigns(two, annotator, annotator_client):
    mine, theirs = two
    member_add(campaign=mine, annotator=annotator)
    html = annotator_client.get(reverse("home")).content.decode()
    assert "mine" in html and "theirs" not in html
    page = annotator_client.get(reverse("annotation:judge", args=[theirs.pk]))
    assert page.status_code == 403 and "not an annotator" in page.content.decode()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    assert [c["name"] for c in api.get("/api/campaigns/open/").json()] == ["mine"]
    refused = api.post(f"/api/campaigns/{theirs.pk}/next/")
    assert refused.status_code == 403 and refused.json()["code"] == "not_member"
    assert api.post(f"/api/campaigns/{mine.pk}/next/").status_code == 200


def test_the_data_migration_makes_annotators_members_of_open_campaigns(two, annotator):
    mine, theirs = two
    campaign_set_status(campaign=theirs, status="closed")
    researcher = UserFactory(role="researcher")
    migration = importlib.import_module("annotation.migrations.0007_memberships")
    migration.members_of_open_campaigns(apps, None)
    migration.members_of_open_campaigns(apps, None)  # twice changes nothing
    members = CampaignAnnotator.objects.values_list("campaign__name", "annotator_id")
    assert list(members) == [("mine", annotator.pk)]
    assert researcher.pk not in {pk for _, pk in members}


def test_create_campaign_adds_the_named_annotators():
    make_corpus(20, name="teacher")
    ann = UserFactory(username="ann", role="annotator")
    out = io.StringIO()
    call_command(
        "create_campaign",
        "--corpus=teacher",
        "--name=crew",
        "--size=4",
        "--annotators=ann",
        stdout=out,
    )
    assert "members: ann" in out.getvalue()
    assert CampaignAnnotator.objects.filter(campaign__name="crew", annotator=ann).exists()
    with pytest.raises(Exception, match="no user named nobody"):
        call_command(
            "create_campaign", "--corpus=teacher", "--name=x", "--size=4", "--annotators=nobody"
        )


def test_the_annotators_page_shows_records_invites_and_deactivates(
    two, researcher_client, annotator
):
    mine, _ = two
    member_add(campaign=mine, annotator=annotator)
    for _ in range(2):
        lease = assignment_next(campaign=mine, annotator=annotator)
        judgment_submit(assignment_id=lease.pk, annotator=annotator, value=2, flagged=True)
    annotator_pause(campaign=mine, annotator=annotator)
    CampaignAnnotator.objects.filter(annotator=annotator).update(
        pause_reason="Gave the same answer 15 times in a row."
    )
    html = researcher_client.get(reverse("annotation:annotator_list")).content.decode()
    assert annotator.username in html and "paused in mine" in html
    assert "Gave the same answer 15 times in a row." in html
    assert 'href="/annotation/annotators/"' in html  # in the nav

    researcher_client.post(
        reverse("annotation:annotator_invite"),
        {"username": "newbie", "campaign": mine.pk, "create": "on"},
    )
    assert CampaignAnnotator.objects.filter(campaign=mine, annotator__username="newbie").exists()
    refused = researcher_client.post(
        reverse("annotation:annotator_invite"),
        {"username": "ghost", "campaign": mine.pk},
        follow=True,
    )
    assert "No user named" in refused.content.decode()

    url = reverse("annotation:annotator_active", args=[annotator.pk])
    researcher_client.post(url, {"action": "deactivate"})
    annotator.refresh_from_db()
    assert not annotator.is_active
    assert not Client().login(username=annotator.username, password="pw-for-tests-123")
    with pytest.raises(NotMember):
        assignment_next(campaign=mine, annotator=annotator)
    researcher_client.post(url, {"action": "reinstate"})
    annotator.refresh_from_db()
    assert annotator.is_active
    assert Judgment.objects.filter(annotator=annotator).count() == 2  # their work stays


def test_annotators_get_403_on_the_annotators_page(annotator_client):
    assert annotator_client.get(reverse("annotation:annotator_list")).status_code == 403
    assert annotator_client.post(reverse("annotation:annotator_invite"), {}).status_code == 403
