"""Join links: crowd workers arrive from Prolific, MTurk or a plain link, judge a session,
get the completion code, and can reach nothing but their campaign's judging pages."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation.models import CampaignAnnotator, CrowdWorker, JoinLink, Judgment
from annotation.services.campaigns import campaign_create, campaign_set_status
from annotation.services.joining import join_link_create, join_link_revoke
from tests.annotation.conftest import make_corpus

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
User = get_user_model()


@pytest.fixture
def campaign(db):
    return campaign_create(
        corpus=make_corpus(30),
        name="study",
        size=12,
        gold_share=0.0,
        seed=1,
        instructions="Think of most people.",
    )


def join_url(link: JoinLink, **params) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return reverse("join", args=[link.token]) + (f"?{query}" if query else "")


def prolific(pid: str, session: str = "S1") -> dict:
    return {"PROLIFIC_PID": pid, "STUDY_ID": "ST1", "SESSION_ID": session}


def answer_one(client: Client, campaign, htmx: bool = True):
    """Open the judging page (which leases an item) and answer it."""
    page = client.get(reverse("annotation:judge", args=[campaign.pk]))
    assignment = page.context["item"].assignment_id
    return client.post(
        reverse("annotation:judge", args=[campaign.pk]),
        {"assignment": assignment, "value": 2},
        **(HTMX if htmx else {}),
    )


def test_a_link_page_shows_the_instructions_and_a_consent_button(client, campaign):
    link = join_link_create(campaign=campaign, platform="prolific")
    html = client.get(join_url(link, **prolific("P1"))).content.decode()
    assert "Think of most people." in html and "I agree, start" in html
    assert "PROLIFIC_PID=P1" in html  # the form posts the platform's ids back
    assert not User.objects.filter(username__startswith="prolific").exists()  # GET makes none


def test_the_same_prolific_id_is_the_same_annotator_across_reopenings(campaign):
    link = join_link_create(campaign=campaign, platform="prolific")
    first, second = Client(), Client()  # two browsers, or cookies cleared in between
    response = first.post(join_url(link, **prolific("5f1a2b")))
    assert response.status_code == 302
    assert response["Location"] == reverse("annotation:judge", args=[campaign.pk])
    answer_one(first, campaign)
    second.post(join_url(link, **prolific("5f1a2b", session="S2")))
    answer_one(second, campaign)
    first.post(join_url(link, **prolific("5f1a2b")))  # and once more in the first browser

    worker = CrowdWorker.objects.get()
    assert (worker.platform, worker.worker_id) == ("prolific", "5f1a2b")
    assert worker.annotator.username == "prolific-5f1a2b"
    assert not worker.annotator.has_usable_password()
    assert User.objects.filter(groups__name="annotator").count() == 1
    judged = Judgment.objects.filter(annotator=worker.annotator)
    assert judged.count() == 2 and len(set(judged.values_list("item_id", flat=True))) == 2
    standing = CampaignAnnotator.objects.get(campaign=campaign, annotator=worker.annotator)
    assert standing.joined_via == link and standing.session_started_at is not None
    assert standing.platform_ids["study_id"] == "ST1"
    assert standing.platform_ids["session_id"] == "S1"
    link.refresh_from_db()
    assert link.uses == 1  # a returning worker does not use the link up again


def test_mturk_and_plain_ids_and_the_mturk_preview(client, campaign):
    link = join_link_create(campaign=campaign, platform="mturk")
    preview = client.get(join_url(link, assignmentId="ASSIGNMENT_ID_NOT_AVAILABLE", hitId="H"))
    assert "preview" in preview.content.decode() and "I agree" not in preview.content.decode()
    refused = client.post(join_url(link, assignmentId="ASSIGNMENT_ID_NOT_AVAILABLE", hitId="H"))
    assert refused.status_code == 400 and not User.objects.exists()

    client.post(join_url(link, workerId="A1B2", assignmentId="AS1", hitId="H1"))
    standing = CampaignAnnotator.objects.get(annotator__crowd_worker__worker_id="A1B2")
    assert standing.platform_ids == {
        "assignment_id": "AS1",
        "hit_id": "H1",
        "platform": "mturk",
        "worker_id": "A1B2",
    }
    plain = join_link_create(campaign=campaign)
    Client().post(join_url(plain, worker="../weird id;drop"))
    made = User.objects.get(crowd_worker__worker_id="../weird id;drop")
    assert made.username.startswith("plain-") and ";" not in made.username


def test_a_link_without_ids_makes_an_anonymous_annotator_kept_in_the_session(campaign):
    link = join_link_create(campaign=campaign)
    browser = Client()
    browser.post(join_url(link))
    answer_one(browser, campaign)
    browser.post(join_url(link))  # reopened in the same browser: resumed
    assert CrowdWorker.objects.count() == 1
    Client().post(join_url(link))  # another browser: another person
    assert CrowdWorker.objects.count() == 2
    link.refresh_from_db()
    assert link.uses == 2


@pytest.mark.parametrize(
    "spoil, status, words",
    [
        ("revoked", 410, "withdrawn"),
        ("expired", 410, "expired"),
        ("used_up", 410, "full"),
        ("closed", 410, "closed"),
        ("unknown", 404, "no study at this link"),
    ],
)
def test_a_bad_link_gets_a_clear_page_and_makes_no_account(campaign, spoil, status, words):
    link = join_link_create(campaign=campaign, max_uses=1)
    Client().post(join_url(link, worker="first"))  # takes the one use
    before = User.objects.count()
    token = link.token
    if spoil == "revoked":
        join_link_revoke(link=link)
    elif spoil == "expired":
        JoinLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(1))
    elif spoil == "closed":
        campaign_set_status(campaign=campaign, status="closed")
    elif spoil == "unknown":
        token = "not-a-token"
    if spoil != "used_up":
        page = Client().get(reverse("join", args=[token]) + "?worker=second")
        assert page.status_code == status and words in page.content.decode()
    response = Client().post(reverse("join", args=[token]) + "?worker=second")
    assert response.status_code == status
    assert words in response.content.decode()
    assert "no account was made" in response.content.decode()
    assert User.objects.count() == before
    assert not CrowdWorker.objects.filter(worker_id="second").exists()
    if spoil == "used_up":  # the one who joined may still come back
        back = Client().post(join_url(link, worker="first"))
        assert back.status_code == 302


def test_the_completion_code_after_items_per_session(campaign):
    campaign.items_per_session = 3
    campaign.save(update_fields=["items_per_session"])
    link = join_link_create(campaign=campaign, platform="mturk", completion_code="DONE42")
    worker = Client()
    worker.post(join_url(link, workerId="W9", assignmentId="A9", hitId="H9"))
    answer_one(worker, campaign)
    second = answer_one(worker, campaign)
    assert "DONE42" not in second.content.decode()
    third = answer_one(worker, campaign)  # htmx: the card becomes the code
    assert "DONE42" in third.content.decode() and "Mechanical Turk" in third.content.decode()
    page = worker.get(reverse("annotation:judge", args=[campaign.pk]))
    assert "DONE42" in page.content.decode()  # stays on the page, no more items
    assert page.context.get("item") is None
    standing = CampaignAnnotator.objects.get(campaign=campaign, joined_via=link)
    assert standing.completions == 1 and standing.session_started_at is None
    assert Judgment.objects.filter(annotator=standing.annotator).count() == 3
    # Opening the link again starts a new session (a new HIT): three more, one more code.
    worker.post(join_url(link, workerId="W9", assignmentId="A10", hitId="H9"))
    for _ in range(3):
        last = answer_one(worker, campaign, htmx=False)
    assert last.status_code == 200 and "DONE42" in last.content.decode()  # without htmx too
    standing.refresh_from_db()
    assert standing.completions == 2
    assert Judgment.objects.filter(annotator=standing.annotator).count() == 6


def test_prolific_workers_are_sent_to_the_completion_url(campaign):
    campaign.items_per_session = 1
    campaign.save(update_fields=["items_per_session"])
    url = "https://app.prolific.com/submissions/complete?cc=C0DE"
    link = join_link_create(
        campaign=campaign, platform="prolific", completion_code="C0DE", completion_url=url
    )
    worker = Client()
    worker.post(join_url(link, **prolific("P7")))
    done = answer_one(worker, campaign)
    assert done["HX-Redirect"] == url
    assert worker.get(reverse("annotation:judge", args=[campaign.pk]))["Location"] == url


def test_a_link_annotator_gets_403_outside_their_campaign(campaign):
    other = campaign_create(corpus=make_corpus(10, name="other"), name="other", size=4)
    link = join_link_create(campaign=campaign, platform="prolific")
    worker = Client()
    worker.post(join_url(link, **prolific("P3")))
    assert worker.get(reverse("home"))["Location"] == reverse(
        "annotation:judge", args=[campaign.pk]
    )
    assert worker.get(reverse("annotation:judge", args=[other.pk])).status_code == 403
    refused = worker.post(reverse("annotation:judge", args=[other.pk]), {"action": "undo"}, **HTMX)
    assert "not an annotator of the campaign" in refused.content.decode()
    for name in ("annotation:campaign_list", "annotation:campaign_create", "corpora:corpus_list"):
        assert worker.get(reverse(name)).status_code == 403
    assert worker.get(reverse("annotation:campaign_detail", args=[campaign.pk])).status_code == 403
    assert worker.get(f"/annotation/{campaign.pk}/pay.csv").status_code == 403
    assert worker.get(reverse("annotation:annotator_list")).status_code == 403
    # The API: only their campaign is listed, and another campaign's items are refused.
    listed = worker.get("/api/campaigns/open/").json()
    assert [row["id"] for row in listed] == [campaign.pk]
    assert worker.post(f"/api/campaigns/{other.pk}/next/").status_code == 403
    assert worker.post(f"/api/campaigns/{other.pk}/undo/").status_code == 403
    assert worker.post(f"/api/campaigns/{campaign.pk}/next/").status_code == 200
    assert worker.get("/api/campaigns/").status_code == 403
    assert worker.get(f"/api/campaigns/{campaign.pk}/judgments/").status_code == 403


def test_join_requests_are_rate_limited_per_address(settings, campaign):
    settings.JOIN_RATE_PER_MINUTE = 3
    link = join_link_create(campaign=campaign)
    crowd = Client(REMOTE_ADDR="203.0.113.7")
    codes = [crowd.post(join_url(link, worker=f"w{n}")).status_code for n in range(4)]
    assert codes == [302, 302, 302, 429]
    assert CrowdWorker.objects.count() == 3
    limited = crowd.get(join_url(link, worker="w5"))
    assert limited.status_code == 429 and "Wait a minute" in limited.content.decode()
    assert Client(REMOTE_ADDR="198.51.100.2").post(join_url(link, worker="w6")).status_code == 302


def test_researchers_make_and_revoke_links_on_the_campaign_page(researcher_client, campaign):
    page = researcher_client.get(reverse("annotation:campaign_detail", args=[campaign.pk]))
    assert 'id="join-links"' in page.content.decode()
    researcher_client.post(
        reverse("annotation:join_link_create", args=[campaign.pk]),
        {"label": "pilot", "platform": "prolific", "max_uses": 20, "completion_code": ""},
    )
    link = JoinLink.objects.get()
    assert link.max_uses == 20 and len(link.completion_code) == 8 and len(link.token) >= 32
    html = researcher_client.get(
        reverse("annotation:campaign_detail", args=[campaign.pk])
    ).content.decode()
    assert f"/join/{link.token}/?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}" in html
    assert "pilot" in html and link.completion_code in html
    researcher_client.post(reverse("annotation:join_link_revoke", args=[campaign.pk, link.pk]))
    link.refresh_from_db()
    assert link.revoked_at is not None
    bad = researcher_client.post(
        reverse("annotation:join_link_create", args=[campaign.pk]),
        {"platform": "prolific", "completion_url": "ftp://x"},
    )
    assert bad.status_code == 302 and JoinLink.objects.count() == 1


def test_two_arrivals_with_the_same_id_at_once_make_one_annotator(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    campaign = campaign_create(corpus=make_corpus(10), name="race", size=4, gold_share=0.0)
    link = join_link_create(campaign=campaign, platform="prolific")
    url = join_url(link, **prolific("SAME"))
    start = threading.Barrier(4)
    codes: list[int] = []

    def arrive() -> None:
        try:
            browser = Client()
            start.wait(timeout=10)
            codes.append(browser.post(url).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=arrive) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert codes == [302] * 4
    assert CrowdWorker.objects.count() == 1
    assert User.objects.filter(username__startswith="prolific-SAME").count() == 1
    assert CampaignAnnotator.objects.filter(campaign=campaign).count() == 1
    link.refresh_from_db()
    assert link.uses == 1


def test_annotators_only_see_and_judge_their_campaigns(annotator_client, annotator, campaign):
    page = annotator_client.get(reverse("home")).content.decode()
    assert "study" not in page
    assert annotator_client.get(reverse("annotation:judge", args=[campaign.pk])).status_code == 403
