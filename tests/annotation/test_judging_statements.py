"""The judging path: on PostgreSQL, a combined submit (submit + next item) is
the submit statement and the claim statement, nothing more (besides the honesty checks
every few judgments); gold answers are scored by the submit statement itself; answers are
JSON without negotiation."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import CampaignAnnotator, Item
from annotation.services.campaigns import campaign_create
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from annotation.services.membership import member_add
from tests.annotation.conftest import make_corpus

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's statements"
)


def _is_other(sql: str) -> bool:
    """The honesty checks' reads, and savepoints (only because the test runs in a
    transaction)."""
    if sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
        return True
    return (
        sql.startswith("SELECT value, seconds FROM annotation_judgment")
        or '"annotation_judgment"."value"' in sql
        or '"annotation_campaignannotator"."reinstated"' in sql
    )


@postgres_only
def test_a_combined_submit_is_two_statements(annotator):
    campaign = campaign_create(
        corpus=make_corpus(40), name="c", size=40, gold_share=0.0, seed=1, speed_floor=0.0
    )
    member_add(campaign=campaign, annotator=annotator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    item = client.post(f"/api/campaigns/{campaign.pk}/next/").json()
    for n in range(6):
        path = f"/api/assignments/{item['assignment_id']}/judgment/?next=1"
        with CaptureQueriesContext(connection) as captured:
            response = client.post(path, {"value": 2 if n % 2 else 1}, format="json")
        assert response.status_code == 201
        item = response.json()["next"]
        statements = [q["sql"] for q in captured if not _is_other(q["sql"])]
        assert len(statements) == 2, statements  # the submit, the claim
        assert "WITH lease AS" in statements[0] and "WITH picked AS" in statements[1]


@postgres_only
def test_gold_answers_are_scored_and_pause_in_the_submit_statement(annotator):
    campaign = campaign_create(
        corpus=make_corpus(40),
        name="c",
        size=20,
        gold_share=0.5,
        gold_min_answers=2,
        gold_threshold=0.7,
        seed=1,
        speed_floor=0.0,
    )
    member_add(campaign=campaign, annotator=annotator)
    results = []
    while len(results) < 2:
        lease = assignment_next(campaign=campaign, annotator=annotator)
        item = Item.objects.get(pk=lease.item_id)
        if not item.is_gold:
            judgment_submit(assignment_id=lease.pk, annotator=annotator, value=1)
            continue
        wrong = -2 if item.gold_acceptable else 2
        with CaptureQueriesContext(connection) as captured:
            results.append(
                judgment_submit(assignment_id=lease.pk, annotator=annotator, value=wrong)
            )
        assert "WITH lease AS" in captured[0]["sql"]
        assert not any(q["sql"] == "BEGIN" for q in captured)  # not the general path
    standing = CampaignAnnotator.objects.get(campaign=campaign, annotator=annotator)
    assert (standing.gold_answered, standing.gold_correct) == (2, 0)
    assert [r.paused for r in results] == [False, True]
    assert standing.paused and "gold accuracy 0%" in standing.pause_reason


def test_the_judging_api_answers_json_whatever_the_accept_header(annotator):
    campaign = campaign_create(corpus=make_corpus(10), name="c", size=10, gold_share=0.0, seed=1)
    member_add(campaign=campaign, annotator=annotator)
    client = APIClient()
    client.force_authenticate(annotator)
    response = client.post(f"/api/campaigns/{campaign.pk}/next/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) >= {"assignment_id", "head", "relation", "tail"}
