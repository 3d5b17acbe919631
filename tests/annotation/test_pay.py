"""The pay sheet: one row per annotator with platform ids, work, status and codes, in the
shapes Prolific's and MTurk's bulk uploads take."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import CampaignAnnotator, Judgment
from annotation.services.campaigns import campaign_create
from annotation.services.joining import join_link_create
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from annotation.services.standing import annotator_pause
from tests.annotation.conftest import make_corpus

pytestmark = pytest.mark.django_db


def table(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def paid(db):
    """Two Prolific workers (one paused), two MTurk workers (one finished, one not)."""
    campaign = campaign_create(
        corpus=make_corpus(30), name="pay me", size=12, gold_share=0.0, seed=1
    )
    campaign.items_per_session = 2
    campaign.save(update_fields=["items_per_session"])
    prolific = join_link_create(campaign=campaign, platform="prolific", completion_code="PC")
    mturk = join_link_create(campaign=campaign, platform="mturk", completion_code="MC")
    arrivals = [
        (prolific, "PROLIFIC_PID=P-good&STUDY_ID=S&SESSION_ID=X1", 2),
        (prolific, "PROLIFIC_PID=%3Dcmd|calc&STUDY_ID=S&SESSION_ID=X2", 1),
        (mturk, "workerId=W-done&assignmentId=A1&hitId=H1", 2),
        (mturk, "workerId=W-half&assignmentId=A2&hitId=H1", 1),
    ]
    for link, query, judgments in arrivals:
        worker = Client()
        worker.post(reverse("join", args=[link.token]) + "?" + query)
        user = CampaignAnnotator.objects.order_by("-pk").first().annotator
        for _ in range(judgments):
            lease = assignment_next(campaign=campaign, annotator=user)
            judgment_submit(assignment_id=lease.pk, annotator=user, value=2)
        worker.get(reverse("annotation:judge", args=[campaign.pk]))  # where codes are issued
    Judgment.objects.filter(campaign=campaign).update(seconds=30)
    bad = CampaignAnnotator.objects.get(annotator__crowd_worker__worker_id="=cmd|calc")
    annotator_pause(campaign=campaign, annotator=bad.annotator)
    bad.pause_reason = "Gold accuracy 20% after 5 gold items."
    bad.save(update_fields=["pause_reason"])
    return campaign


def pay(client, campaign, query):
    return client.get(reverse("annotation:campaign_pay", args=[campaign.pk]) + query)


def test_the_full_sheet_has_a_row_per_annotator(researcher_client, paid):
    response = pay(researcher_client, paid, "?shape=full")
    assert response["Content-Type"].startswith("text/csv")
    rows = table(response)
    header, body = rows[0], {row[2]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert header[:3] == ["annotator", "platform", "worker_id"] and len(body) == 4
    good = body["P-good"]
    assert (good["platform"], good["study_id"], good["session_id"]) == ("prolific", "S", "X1")
    assert (good["judgments"], good["active_minutes"], good["status"]) == ("2", "1.0", "active")
    assert (good["completions"], good["completion_code"]) == ("1", "PC")
    bad = body["'=cmd|calc"]  # a formula start is defused
    assert bad["status"] == "paused" and bad["pause_reason"].startswith("Gold accuracy")
    assert body["W-done"]["assignment_id"] == "A1" and body["W-done"]["hit_id"] == "H1"
    assert body["W-half"]["completions"] == "0"


def test_prolific_approve_and_bonus_shapes(researcher_client, paid):
    assert table(pay(researcher_client, paid, "?shape=prolific")) == [["P-good"]]
    bonus = table(pay(researcher_client, paid, "?shape=prolific&bonus_per_judgment=0.05"))
    assert bonus == [["P-good", "0.10"]]  # the paused worker gets no bonus
    bad = pay(researcher_client, paid, "?shape=prolific&bonus_per_judgment=lots")
    assert bad.status_code == 400


def test_mturk_batch_results_shape(researcher_client, paid):
    rows = table(pay(researcher_client, paid, "?shape=mturk"))
    assert rows[0] == ["HITId", "AssignmentId", "WorkerId", "Approve", "Reject"]
    assert sorted(rows[1:]) == [["H1", "A1", "W-done", "x", ""], ["H1", "A2", "W-half", "", ""]]
    assert pay(researcher_client, paid, "?shape=excel").status_code == 400


def test_the_pay_sheet_is_for_researchers(annotator_client, paid):
    assert pay(annotator_client, paid, "?shape=full").status_code == 403
