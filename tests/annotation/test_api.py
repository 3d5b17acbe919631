import csv
import io
from datetime import timedelta

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Assignment, Campaign, CampaignAnnotator, Item, Judgment
from annotation.selectors import JUDGMENT_EXPORT_FIELDS
from annotation.services.aggregation import (
    AGGREGATE_JOB,
    campaign_aggregate,
    campaign_aggregate_job_run,
)
from annotation.services.campaigns import campaign_create, campaign_set_status
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next, leases_reap
from annotation.services.standing import annotator_pause, annotator_reinstate
from corpora.models import Triple
from jobs.models import Job
from tests.annotation.conftest import add_members, make_corpus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ITEM_FIELDS = {"assignment_id", "head", "relation", "tail", "sentence", "guideline", "expires_at"}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def create(corpus, **kwargs) -> Campaign:
    """A campaign whose members are the test's annotators (made before it)."""
    options = {"name": "c", "size": 10, "gold_share": 0.0, "seed": 1} | kwargs
    campaign = campaign_create(corpus=corpus, **options)
    add_members(campaign)
    return campaign


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def research(researcher):
    return client_for(researcher)


@pytest.fixture
def annotate(annotator):
    """An annotator's client, signed in with a token as a script would be."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    return client


def judged_campaign(**kwargs) -> Campaign:
    campaign = create(make_corpus(20), size=6, **kwargs)
    users = [UserFactory(role="annotator") for _ in range(3)]
    add_members(campaign, users)
    for user in users:
        while lease := assignment_next(campaign=campaign, annotator=user):
            judgment_submit(assignment_id=lease.pk, annotator=user, value=2)
    return campaign


# --- Researchers ------------------------------------------------------------------


def test_create_by_corpus_name_or_id_then_list_and_detail(research, researcher):
    corpus = make_corpus(30)
    response = research.post(
        "/api/campaigns/",
        {"corpus": corpus.name, "name": "first", "size": 12, "gold_share": 0.0, "seed": 3},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["item_count"] == 12 and body["gold_count"] == 0
    assert body["corpus"] == {"id": corpus.pk, "name": corpus.name}
    assert body["judgments_per_item"] == 3 and body["seed"] == 3
    assert body["progress"]["judgments_wanted"] == 36
    assert body["created_by"] == researcher.username
    assert Campaign.objects.get(name="first").created_by == researcher

    by_id = research.post(
        "/api/campaigns/",
        {
            "corpus": corpus.pk,
            "name": "second",
            "size": 8,
            "sampling": "relation",
            "judgments_per_item": 2,
            "lease_seconds": 60,
            "gold_share": 0.2,
        },
        format="json",
    )
    assert by_id.status_code == 201, by_id.json()
    second = by_id.json()
    assert (second["sampling"], second["judgments_per_item"], second["lease_seconds"]) == (
        "relation",
        2,
        60,
    )
    assert second["gold_count"] > 0

    listed = research.get("/api/campaigns/").json()
    assert [c["name"] for c in listed] == ["second", "first"]
    assert "stats" not in listed[0] and "progress" not in listed[0]

    detail = research.get(f"/api/campaigns/{second['id']}/").json()
    assert detail["progress"] == {
        "items": 8,
        "gold": second["gold_count"],
        "judgments_wanted": 16,
        "judgments": 0,
        "items_complete": 0,
        "live_leases": 0,
        "annotators": 0,
        "flagged": 0,
        "percent": 0.0,
    }
    assert detail["stats"] == {}


def test_create_with_a_gold_reference_file(research):
    corpus = make_corpus(30)
    reference = SimpleUploadedFile(
        "gold.tsv",
        b"".join(f"PersonX reads book {i}\txNeed\tto open it {i}\n".encode() for i in range(30)),
    )
    response = research.post(
        "/api/campaigns/",
        {
            "corpus": corpus.name,
            "name": "with gold",
            "size": 20,
            "gold_share": 0.1,
            "gold_reference": reference,
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    campaign = Campaign.objects.get(name="with gold")
    sources = set(Item.objects.filter(campaign=campaign, is_gold=True).values_list("gold_source"))
    assert ("reference",) in sources


def test_create_refusals_are_400_with_a_clear_message(research):
    corpus = make_corpus(10)
    unknown = research.post(
        "/api/campaigns/", {"corpus": "nope", "name": "x", "size": 3}, format="json"
    )
    assert unknown.status_code == 400
    assert "No corpus with the id or name 'nope'" in str(unknown.json()["corpus"])

    assert (
        research.post(
            "/api/campaigns/",
            {"corpus": corpus.name, "name": "x", "size": 3, "judgments_per_item": 0},
            format="json",
        ).status_code
        == 400
    )
    scored = research.post(
        "/api/campaigns/",
        {"corpus": corpus.name, "name": "x", "size": 3, "sampling": "score"},
        format="json",
    )
    assert scored.status_code == 400
    assert "needs critic scores" in scored.json()["detail"]

    create(corpus, name="taken")
    duplicate = research.post(
        "/api/campaigns/", {"corpus": corpus.name, "name": "taken", "size": 3}, format="json"
    )
    assert duplicate.status_code == 400
    assert "name" in duplicate.json()["detail"]
    assert Campaign.objects.count() == 1


def test_unknown_campaign_is_404(research, annotate):
    assert research.get("/api/campaigns/999999/").status_code == 404
    assert research.post("/api/campaigns/999999/aggregate/").status_code == 404
    assert research.get("/api/campaigns/999999/judgments/").status_code == 404
    assert annotate.post("/api/campaigns/999999/next/").status_code == 404
    assert annotate.post("/api/campaigns/999999/undo/").status_code == 404


def test_aggregate_is_a_job_and_the_detail_then_has_stats(research, researcher):
    campaign = judged_campaign()
    response = research.post(f"/api/campaigns/{campaign.pk}/aggregate/")
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert response["Location"].endswith(f"/api/jobs/{job.pk}/")
    assert job.kind == AGGREGATE_JOB and job.created_by == researcher
    # Asking again while it waits gives the same job.
    assert research.post(f"/api/campaigns/{campaign.pk}/aggregate/").json()["id"] == job.pk

    campaign_aggregate_job_run(job_id=job.pk)  # what the worker does
    assert research.get(f"/api/jobs/{job.pk}/").json()["status"] == "succeeded"
    detail = research.get(f"/api/campaigns/{campaign.pk}/").json()
    assert detail["stats"]["judgments"] == 18
    assert detail["progress"]["items_complete"] == 6
    assert detail["aggregated_at"] is not None


def test_judgments_export_raw_and_aggregated_in_jsonl_and_csv(research):
    campaign = judged_campaign()
    campaign_aggregate(campaign=campaign)
    url = f"/api/campaigns/{campaign.pk}/judgments/"

    raw = research.get(url)  # JSONL and raw by default
    assert raw.status_code == 200
    assert raw["Content-Type"] == "application/x-ndjson"
    assert 'filename="c-raw.jsonl"' in raw["Content-Disposition"]
    lines = [orjson.loads(x) for x in b"".join(raw.streaming_content).splitlines()]
    assert len(lines) == 18
    assert set(lines[0]) == set(JUDGMENT_EXPORT_FIELDS)

    table = research.get(url, {"kind": "raw", "format": "csv"})
    assert table.status_code == 200
    assert table["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(table.streaming_content).decode())))
    assert rows[0] == list(JUDGMENT_EXPORT_FIELDS) and len(rows) == 19

    aggregated = research.get(url, {"kind": "aggregated", "format": "jsonl"})
    labels = [orjson.loads(x) for x in b"".join(aggregated.streaming_content).splitlines()]
    assert len(labels) == 6
    assert {row["majority"] for row in labels} == {True}

    agg_csv = research.get(url, {"kind": "aggregated", "format": "csv"})
    assert len(b"".join(agg_csv.streaming_content).decode().splitlines()) == 7


def test_judgments_export_refuses_unknown_kind_or_format(research):
    campaign = create(make_corpus(10))
    url = f"/api/campaigns/{campaign.pk}/judgments/"
    bad_format = research.get(url, {"format": "parquet"})
    assert bad_format.status_code == 400
    assert "format" in bad_format.json()
    bad_kind = research.get(url, {"kind": "everything"})
    assert bad_kind.status_code == 400
    assert "kind" in bad_kind.json()


# --- Annotators -------------------------------------------------------------------


def test_open_campaigns_list_carries_no_stats(annotate):
    corpus = make_corpus(20)
    open_one = create(corpus, name="open one", instructions="Judge kindly.")
    closed = create(corpus, name="closed one")
    campaign_set_status(campaign=closed, status=Campaign.Status.CLOSED)
    Campaign.objects.filter(pk=open_one.pk).update(stats={"judgments": 99})
    listed = annotate.get("/api/campaigns/open/").json()
    assert listed == [
        {
            "id": open_one.pk,
            "name": "open one",
            "instructions": "Judge kindly.",
            "lease_seconds": 600,
        }
    ]


def test_next_judge_and_nothing_left(annotate, annotator):
    campaign = create(make_corpus(10), size=2)
    url = f"/api/campaigns/{campaign.pk}/next/"
    first = annotate.post(url)
    assert first.status_code == 200
    item = first.json()
    assert set(item) == ITEM_FIELDS
    lease = Assignment.objects.get(pk=item["assignment_id"])
    assert lease.annotator == annotator
    assert item["tail"] == lease.item.tail
    assert item["sentence"] and item["relation"] in {"xNeed", "xIntent", "xWant", "oEffect"}
    # Asking again before answering gives the same item.
    assert annotate.post(url).json()["assignment_id"] == item["assignment_id"]

    judged = annotate.post(
        f"/api/assignments/{item['assignment_id']}/judgment/",
        {"value": 1, "flagged": True},
        format="json",
    )
    assert judged.status_code == 201
    assert judged.json()["value"] == 1 and judged.json()["flagged"] is True
    stored = Judgment.objects.get(annotator=annotator)
    assert (stored.value, stored.flagged, stored.item_id) == (1, True, lease.item_id)

    second = annotate.post(url).json()
    annotate.post(f"/api/assignments/{second['assignment_id']}/judgment/", {"value": -2})
    nothing = annotate.post(url)
    assert nothing.status_code == 204
    assert nothing.content == b""


def test_submit_can_hand_back_the_next_item(annotate, annotator):
    campaign = create(make_corpus(10), size=2)
    first = annotate.post(f"/api/campaigns/{campaign.pk}/next/").json()
    judged = annotate.post(
        f"/api/assignments/{first['assignment_id']}/judgment/?next=1", {"value": 2}, format="json"
    )
    assert judged.status_code == 201
    following = judged.json()["next"]
    assert set(following) == ITEM_FIELDS
    assert following["assignment_id"] != first["assignment_id"]
    last = annotate.post(
        f"/api/assignments/{following['assignment_id']}/judgment/?next=1",
        {"value": -1},
        format="json",
    )
    assert last.json()["next"] is None
    assert Judgment.objects.filter(annotator=annotator).count() == 2


def test_a_repeated_submit_is_200_and_keeps_the_first_answer(annotate, annotator):
    campaign = create(make_corpus(10), size=2)
    lease_id = annotate.post(f"/api/campaigns/{campaign.pk}/next/").json()["assignment_id"]
    url = f"/api/assignments/{lease_id}/judgment/"
    assert annotate.post(url, {"value": 2}, format="json").status_code == 201
    again = annotate.post(url, {"value": -1}, format="json")
    assert again.status_code == 200
    assert again.json()["value"] == 2
    assert Judgment.objects.filter(annotator=annotator).count() == 1
    assert Item.objects.get(pk=Assignment.objects.get(pk=lease_id).item_id).judgment_count == 1


def test_submit_refusals(annotate, annotator):
    campaign = create(make_corpus(10), size=2, judgments_per_item=1)
    lease_id = annotate.post(f"/api/campaigns/{campaign.pk}/next/").json()["assignment_id"]
    url = f"/api/assignments/{lease_id}/judgment/"

    off_scale = annotate.post(url, {"value": 3}, format="json")
    assert off_scale.status_code == 400 and "value" in off_scale.json()
    assert annotate.post(url, {}, format="json").status_code == 400

    # Someone else's lease, or none at all: 404.
    other = UserFactory(role="annotator")
    add_members(campaign, [other])
    theirs = assignment_next(campaign=campaign, annotator=other)
    not_mine = annotate.post(f"/api/assignments/{theirs.pk}/judgment/", {"value": 2})
    assert not_mine.status_code == 404
    assert not_mine.json() == {
        "detail": "That item was not given to you.",
        "code": "assignment_not_found",
    }
    assert annotate.post("/api/assignments/987654/judgment/", {"value": 2}).status_code == 404

    # The lease ran out and someone else filled the item: 409.
    judgment_submit(assignment_id=theirs.pk, annotator=other, value=2)
    Assignment.objects.filter(pk=lease_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    leases_reap(campaign=campaign)
    third = UserFactory(role="annotator")
    add_members(campaign, [third])
    taken = assignment_next(campaign=campaign, annotator=third)
    assert taken.item_id == Assignment.objects.get(pk=lease_id).item_id
    judgment_submit(assignment_id=taken.pk, annotator=third, value=2)
    late = annotate.post(url, {"value": 2}, format="json")
    assert late.status_code == 409
    assert late.json()["code"] == "lease_refused" and "ran out" in late.json()["detail"]


def test_skip_then_undo(annotate, annotator):
    campaign = create(make_corpus(10), size=3)
    next_url = f"/api/campaigns/{campaign.pk}/next/"
    undo_url = f"/api/campaigns/{campaign.pk}/undo/"

    nothing = annotate.post(undo_url)
    assert nothing.status_code == 409 and nothing.json()["code"] == "nothing_to_undo"

    skipped = annotate.post(next_url).json()
    assert annotate.post(f"/api/assignments/{skipped['assignment_id']}/skip/").status_code == 204
    assert Assignment.objects.get(pk=skipped["assignment_id"]).status == "skipped"
    # A repeated skip changes nothing; a skip of someone else's item is 404.
    assert annotate.post(f"/api/assignments/{skipped['assignment_id']}/skip/").status_code == 204
    assert annotate.post("/api/assignments/987654/skip/").status_code == 404

    item = annotate.post(next_url).json()
    assert item["assignment_id"] != skipped["assignment_id"]
    annotate.post(f"/api/assignments/{item['assignment_id']}/judgment/", {"value": 2})
    undone = annotate.post(undo_url)
    assert undone.status_code == 200
    assert set(undone.json()) == ITEM_FIELDS | {"undone_value", "undone_flagged"}
    assert (undone.json()["undone_value"], undone.json()["undone_flagged"]) == (2, False)
    assert undone.json()["assignment_id"] == item["assignment_id"]
    assert undone.json()["tail"] == item["tail"]
    assert not Judgment.objects.filter(annotator=annotator).exists()
    # The re-leased item is what comes next, to be answered anew.
    assert annotate.post(next_url).json()["assignment_id"] == item["assignment_id"]
    again = annotate.post(f"/api/assignments/{item['assignment_id']}/judgment/", {"value": -1})
    assert again.status_code == 201
    assert Judgment.objects.get(annotator=annotator).value == -1


def test_closed_campaign_is_409_and_a_paused_annotator_403(annotate, annotator):
    campaign = create(make_corpus(10))
    url = f"/api/campaigns/{campaign.pk}/next/"
    lease_id = annotate.post(url).json()["assignment_id"]
    annotator_pause(campaign=campaign, annotator=annotator)
    paused = annotate.post(url)
    assert paused.status_code == 403
    assert paused.json()["code"] == "annotator_paused" and "paused" in paused.json()["detail"]
    # The paused annotator's lease was returned: a late answer is refused, not stored.
    late = annotate.post(f"/api/assignments/{lease_id}/judgment/", {"value": 2})
    assert late.status_code == 403
    assert not Judgment.objects.exists()

    annotator_reinstate(campaign=campaign, annotator=annotator)
    campaign_set_status(campaign=campaign, status=Campaign.Status.CLOSED)
    closed = annotate.post(url)
    assert closed.status_code == 409
    assert closed.json() == {"detail": "Campaign 'c' is closed.", "code": "campaign_closed"}


def test_gold_answers_pause_through_the_api(annotate, annotator):
    campaign = create(make_corpus(20), gold_share=0.5, gold_min_answers=1, gold_threshold=1.0)
    gold = Item.objects.filter(campaign=campaign, is_gold=True).first()
    now = timezone.now()
    lease = Assignment.objects.create(
        campaign=campaign,
        item=gold,
        annotator=annotator,
        leased_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    wrong = -2 if gold.gold_acceptable else 2
    response = annotate.post(f"/api/assignments/{lease.pk}/judgment/", {"value": wrong})
    assert response.status_code == 201
    assert "paused" not in response.json()  # being gold is not told
    assert CampaignAnnotator.objects.get(annotator=annotator).paused
    assert annotate.post(f"/api/campaigns/{campaign.pk}/next/").status_code == 403


# --- Roles, authentication and privacy ---------------------------------------------------


def test_token_auth_and_anonymous_refused(annotator):
    campaign = create(make_corpus(10))
    assert APIClient().post(f"/api/campaigns/{campaign.pk}/next/").status_code in (401, 403)
    assert APIClient().get("/api/campaigns/open/").status_code in (401, 403)
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.post(f"/api/campaigns/{campaign.pk}/next/").status_code in (401, 403)
    good = APIClient()
    good.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    assert good.post(f"/api/campaigns/{campaign.pk}/next/").status_code == 200


def test_annotators_get_403_on_researcher_endpoints(annotate):
    campaign = judged_campaign()
    corpus = campaign.corpus
    for url in [
        "/api/campaigns/",
        f"/api/campaigns/{campaign.pk}/",
        f"/api/campaigns/{campaign.pk}/judgments/",
        f"/api/campaigns/{campaign.pk}/judgments/?kind=aggregated&format=csv",
    ]:
        response = annotate.get(url)
        assert response.status_code == 403, url
        assert response.json()["detail"] == "This resource is for researchers."
    created = annotate.post(
        "/api/campaigns/", {"corpus": corpus.name, "name": "mine", "size": 2}, format="json"
    )
    assert created.status_code == 403
    assert annotate.post(f"/api/campaigns/{campaign.pk}/aggregate/").status_code == 403
    assert not Campaign.objects.filter(name="mine").exists()
    assert not Job.objects.exists()


def test_researchers_may_judge_through_the_api_too(research, researcher):
    campaign = create(make_corpus(10))
    lease_id = research.post(f"/api/campaigns/{campaign.pk}/next/").json()["assignment_id"]
    assert research.post(f"/api/assignments/{lease_id}/judgment/", {"value": 2}).status_code == 201
    assert Judgment.objects.get(annotator=researcher).value == 2


def test_annotator_endpoints_reveal_no_score_gold_or_other_people(annotate, annotator):
    corpus = make_corpus(40, scores=[0.8731] * 40)
    Triple.objects.filter(corpus=corpus).update(
        source_fields='{"p_valid_model": 0.4242, "logprob": -1.2345, "valid": 2}'
    )
    campaign = create(corpus, size=20, gold_share=0.5, gold_min_answers=100)
    other = UserFactory(username="someone-else-qz", role="annotator")
    add_members(campaign, [other])
    # Gold is drawn at random (half the time here): judge until a regular item is among them.
    for _ in range(20):
        lease = assignment_next(campaign=campaign, annotator=other)
        judgment_submit(assignment_id=lease.pk, annotator=other, value=-2)
        if Judgment.objects.filter(annotator=other, item__is_gold=False).count() >= 3:
            break
    campaign_aggregate(campaign=campaign)
    judged_by_other = Judgment.objects.filter(annotator=other, item__is_gold=False).first().item
    gold = Item.objects.filter(campaign=campaign, is_gold=True).first()
    now = timezone.now()
    for n, item in enumerate([judged_by_other, gold]):
        Assignment.objects.create(
            campaign=campaign,
            item=item,
            annotator=annotator,
            leased_at=now + timedelta(seconds=n),
            expires_at=now + timedelta(minutes=10),
        )

    bodies = []

    def seen(response):
        assert response.status_code in (200, 201), response.content
        bodies.append(response.content.decode())
        return response.json()

    listed = seen(annotate.get("/api/campaigns/open/"))
    assert set(listed[0]) == {"id", "name", "instructions", "lease_seconds"}
    shown = seen(annotate.post(f"/api/campaigns/{campaign.pk}/next/"))  # the newest lease: gold
    assert set(shown) == ITEM_FIELDS and shown["tail"] == gold.tail
    answered = seen(
        annotate.post(f"/api/assignments/{shown['assignment_id']}/judgment/", {"value": 2})
    )
    assert set(answered) == {"assignment_id", "value", "flagged", "created_at"}
    shown = seen(annotate.post(f"/api/campaigns/{campaign.pk}/next/"))
    assert shown["tail"] == judged_by_other.tail
    seen(annotate.post(f"/api/assignments/{shown['assignment_id']}/judgment/", {"value": 2}))
    seen(annotate.post(f"/api/assignments/{shown['assignment_id']}/judgment/", {"value": 2}))
    seen(annotate.post(f"/api/campaigns/{campaign.pk}/undo/"))

    for body in bodies:
        for secret in ("0.8731", "0.873", "0.4242", "1.2345", "someone-else-qz", "p_valid"):
            assert secret not in body
        for word in ("gold", "majority", "score", "stats", "ds_", "confidence", "valid"):
            assert word not in body.lower()


def test_the_openapi_schema_documents_the_annotation_api(researcher_client):
    schema = researcher_client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in (
        "/api/campaigns/:",
        "/api/campaigns/open/:",
        "/api/campaigns/{id}/:",
        "/api/campaigns/{id}/aggregate/:",
        "/api/campaigns/{id}/judgments/:",
        "/api/campaigns/{id}/next/:",
        "/api/campaigns/{id}/undo/:",
        "/api/assignments/{id}/judgment/:",
        "/api/assignments/{id}/skip/:",
    ):
        assert path in text, path
    assert "ItemOutput" in text and "JudgmentInput" in text
