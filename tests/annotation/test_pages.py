import csv
import io
from datetime import timedelta

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from annotation.models import Assignment, Campaign, CampaignAnnotator, Item, Judgment
from annotation.selectors import JUDGMENT_EXPORT_FIELDS
from annotation.services.aggregation import AGGREGATE_JOB, campaign_aggregate
from annotation.services.campaigns import campaign_create, campaign_set_status
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next, leases_reap
from annotation.services.standing import annotator_pause
from corpora.models import Triple
from jobs.models import Job
from tests.annotation.conftest import add_members, make_corpus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Users are made by the dozen here; a slow password hash would be most of the time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def create(corpus, **kwargs) -> Campaign:
    """A campaign whose members are the test's annotators (made before it)."""
    options = {"name": "c", "size": 10, "gold_share": 0.0, "seed": 1} | kwargs
    campaign = campaign_create(corpus=corpus, **options)
    add_members(campaign)
    return campaign


def judge_url(campaign: Campaign) -> str:
    return reverse("annotation:judge", args=[campaign.pk])


def lease_of(campaign: Campaign, user) -> Assignment:
    """The item the page shows: the newest live lease (after an undo there are two)."""
    return (
        Assignment.objects.filter(campaign=campaign, annotator=user, status="leased")
        .order_by("-leased_at", "-pk")
        .first()
    )


def answer(client, campaign, user, value, htmx=True, **extra):
    """Open the page (which leases an item) and answer it; returns (lease, response)."""
    client.get(judge_url(campaign))
    lease = lease_of(campaign, user)
    data = {"assignment": lease.pk, "value": value, **extra}
    return lease, client.post(judge_url(campaign), data, **(HTMX if htmx else {}))


def judge_with_services(campaign, users, items: int, values=(2, 2, -1)):
    """Each user judges `items` items through the services (fast setup for stats)."""
    add_members(campaign, users)
    for user in users:
        for n in range(items):
            lease = assignment_next(campaign=campaign, annotator=user)
            value = values[(n + user.pk) % len(values)]
            judgment_submit(assignment_id=lease.pk, annotator=user, value=value)


# --- The annotator's page -----------------------------------------------------------------


def test_judge_page_shows_the_sentence_the_keys_and_the_guidelines(annotator_client, annotator):
    campaign = create(make_corpus(8), instructions="Judge whether it usually holds.")
    response = annotator_client.get(judge_url(campaign))
    assert response.status_code == 200
    html = response.content.decode()
    item = lease_of(campaign, annotator).item
    sentence = item.relation.sentence(item.head.text, item.tail)
    assert sentence in html
    for key in ("1", "2", "3", "4", "0", "s", "u", "f"):
        assert f'data-key="{key}"' in html
    assert "always/often" in html and "can&#x27;t judge" in html
    assert "Judge whether it usually holds." in html
    assert 'id="guidelines"' in html and "<kbd>g</kbd>" in html
    assert item.relation.description in html
    assert f'hx-post="{judge_url(campaign)}"' in html
    assert "js/annotate.js" in html


def test_plain_post_stores_the_value_and_redirects_to_the_page(annotator_client, annotator):
    campaign = create(make_corpus(8))
    lease, response = answer(annotator_client, campaign, annotator, -1, htmx=False)
    assert response.status_code == 302
    assert response["Location"] == judge_url(campaign)
    judgment = Judgment.objects.get()
    assert (judgment.value, judgment.item_id, judgment.flagged) == (-1, lease.item_id, False)
    page = annotator_client.get(judge_url(campaign)).content.decode()
    assert "Saved: farfetched/never." in page
    assert lease_of(campaign, annotator).item_id != lease.item_id


def test_htmx_answers_come_back_as_the_card_alone_on_the_skd_scale(annotator_client, annotator):
    campaign = create(make_corpus(12))
    for value in (2, 1, -1, -2, -9):
        lease, response = answer(annotator_client, campaign, annotator, value)
        assert response.status_code == 200
        html = response.content.decode()
        assert html.lstrip().startswith('<section id="judge-card"')
        assert "<html" not in html and 'id="guidelines"' not in html
        assert Judgment.objects.get(assignment=lease).value == value
        assert f'data-assignment="{lease_of(campaign, annotator).pk}"' in html
    assert sorted(Judgment.objects.values_list("value", flat=True)) == [-9, -2, -1, 1, 2]
    assert 'id="judged-here">5<' in html
    assert 'id="judged-today">5<' in html


def test_flag_skip_and_undo(annotator_client, annotator):
    campaign = create(make_corpus(12))
    flagged_lease, _ = answer(annotator_client, campaign, annotator, 2, flagged="1")
    assert Judgment.objects.get(assignment=flagged_lease).flagged is True

    skipped = lease_of(campaign, annotator)
    response = annotator_client.post(
        judge_url(campaign), {"assignment": skipped.pk, "action": "skip"}, **HTMX
    )
    skipped.refresh_from_db()
    assert skipped.status == "skipped"
    assert "Skipped." in response.content.decode()
    assert lease_of(campaign, annotator).item_id != skipped.item_id

    last, _ = answer(annotator_client, campaign, annotator, 1)
    response = annotator_client.post(judge_url(campaign), {"action": "undo"}, **HTMX)
    html = response.content.decode()
    assert not Judgment.objects.filter(assignment=last).exists()
    assert "taken back" in html
    assert f'data-assignment="{last.pk}"' in html  # the undone item is back
    answer(annotator_client, campaign, annotator, -2)
    assert Judgment.objects.get(assignment=last).value == -2
    assert Judgment.objects.count() == 2


def test_a_double_post_stores_one_judgment(annotator_client, annotator):
    campaign = create(make_corpus(8))
    lease, first = answer(annotator_client, campaign, annotator, 2)
    again = annotator_client.post(judge_url(campaign), {"assignment": lease.pk, "value": 1}, **HTMX)
    assert again.status_code == 200
    assert "already answered" in again.content.decode()
    assert list(Judgment.objects.values_list("value", flat=True)) == [2]


def test_undo_with_nothing_to_undo_and_bad_input_are_messages(annotator_client, annotator):
    campaign = create(make_corpus(8))
    html = annotator_client.post(judge_url(campaign), {"action": "undo"}, **HTMX).content.decode()
    assert "no judgment of yours to undo" in html
    lease = lease_of(campaign, annotator)
    html = annotator_client.post(
        judge_url(campaign), {"assignment": lease.pk, "value": 7}, **HTMX
    ).content.decode()
    assert "Choose one of the answers" in html
    response = annotator_client.post(judge_url(campaign), {"assignment": 10**6, "value": 2})
    assert response.status_code == 302
    page = annotator_client.get(judge_url(campaign)).content.decode()
    assert "That item was not given to you." in page
    assert not Judgment.objects.exists()


def test_an_expired_lease_on_a_full_item_shows_the_refusal(annotator_client, annotator):
    campaign = create(make_corpus(8), judgments_per_item=1)
    annotator_client.get(judge_url(campaign))
    mine = lease_of(campaign, annotator)
    Assignment.objects.filter(pk=mine.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert leases_reap(campaign=campaign) == 1  # what claims do every few seconds
    other = UserFactory(role="annotator")
    add_members(campaign, [other])
    theirs = assignment_next(campaign=campaign, annotator=other)
    assert theirs.item_id == mine.item_id  # the expired item went back and was taken
    judgment_submit(assignment_id=theirs.pk, annotator=other, value=2)

    response = annotator_client.post(
        judge_url(campaign), {"assignment": mine.pk, "value": 1}, **HTMX
    )
    assert "ran out" in response.content.decode()
    response = annotator_client.post(
        judge_url(campaign), {"assignment": mine.pk, "value": 1}, follow=True
    )
    assert "ran out" in response.content.decode()
    assert Judgment.objects.filter(annotator=annotator).count() == 0


def test_nothing_left_thanks_the_annotator(annotator_client, annotator):
    campaign = create(make_corpus(4), size=2)
    answer(annotator_client, campaign, annotator, 2)
    _, response = answer(annotator_client, campaign, annotator, 2)
    assert "Nothing left for you in this campaign. Thank you!" in response.content.decode()
    page = annotator_client.get(judge_url(campaign)).content.decode()
    assert "Nothing left for you in this campaign. Thank you!" in page


def test_closed_campaign_and_paused_annotator_are_told(annotator_client, annotator):
    campaign = create(make_corpus(8))
    annotator_client.get(judge_url(campaign))
    annotator_pause(campaign=campaign, annotator=annotator)
    assert "paused" in annotator_client.get(judge_url(campaign)).content.decode()
    campaign_set_status(campaign=campaign, status=Campaign.Status.CLOSED)
    assert "is closed" in annotator_client.get(judge_url(campaign)).content.decode()


def test_the_annotator_page_reveals_no_score_gold_or_other_people(annotator_client, annotator):
    corpus = make_corpus(40, scores=[0.8731] * 40)
    Triple.objects.filter(corpus=corpus).update(
        source_fields='{"p_valid_model": 0.4242, "logprob": -1.2345}'
    )
    campaign = create(corpus, size=20, gold_share=0.5, gold_min_answers=100)
    other = UserFactory(username="someone-else-qz", role="annotator")
    judge_with_services(campaign, [other], items=16)  # gold is drawn at random: 6 could all be gold
    judged_by_other = Judgment.objects.filter(annotator=other, item__is_gold=False).first().item
    now = timezone.now()
    Assignment.objects.create(
        campaign=campaign,
        item=judged_by_other,
        annotator=annotator,
        leased_at=now,
        expires_at=now + timedelta(minutes=10),
    )

    def assert_private(html: str, item: Item) -> None:
        assert item.tail in html  # the item shown is the one meant
        for secret in ("0.8731", "0.873", "0.4242", "1.2345", "someone-else-qz", "p_valid"):
            assert secret not in html
        assert "gold" not in html.lower()
        assert "majority" not in html.lower()

    assert_private(annotator_client.get(judge_url(campaign)).content.decode(), judged_by_other)

    gold = Item.objects.filter(campaign=campaign, is_gold=True).first()
    Assignment.objects.create(
        campaign=campaign,
        item=gold,
        annotator=annotator,
        leased_at=now + timedelta(seconds=1),
        expires_at=now + timedelta(minutes=10),
    )
    lease = Assignment.objects.get(annotator=annotator, item=judged_by_other)
    response = annotator_client.post(
        judge_url(campaign), {"assignment": lease.pk, "value": 2}, **HTMX
    )
    assert_private(response.content.decode(), gold)
    assert_private(annotator_client.get(judge_url(campaign)).content.decode(), gold)


def test_the_judge_page_needs_a_role(client, campaign_for_roles):
    url = judge_url(campaign_for_roles)
    assert client.get(url).status_code == 302  # anonymous: to the login page
    response = client.post(url, {"action": "undo"}, **HTMX)  # logged out mid-session
    assert response["HX-Redirect"] == f"{reverse('login')}?next={url}"
    client.force_login(UserFactory())  # no role
    assert client.get(url).status_code == 403


def test_researchers_may_judge_too(researcher_client, researcher, campaign_for_roles):
    campaign = campaign_for_roles
    _, response = answer(researcher_client, campaign, researcher, 1)
    assert response.status_code == 200
    assert Judgment.objects.get(annotator=researcher).value == 1


@pytest.fixture
def campaign_for_roles(db) -> Campaign:
    return create(make_corpus(8))


# --- The annotator's home ---------------------------------------------------------------


def test_annotator_home_lists_open_campaigns_with_their_own_progress(annotator_client, annotator):
    corpus = make_corpus(12)
    first = create(corpus, name="first round")
    closed = create(corpus, name="closed one", seed=2)
    campaign_set_status(campaign=closed, status=Campaign.Status.CLOSED)
    judge_with_services(first, [annotator], items=3)
    html = annotator_client.get(reverse("home")).content.decode()
    assert "first round" in html and "closed one" not in html
    assert "You judged 3 here, 3 today." in html
    assert judge_url(first) in html
    assert 'href="/"' in html and ">Annotate<" in html  # the nav link
    assert f'href="{reverse("annotation:campaign_list")}"' not in html


# --- Researcher pages -------------------------------------------------------------------


@pytest.fixture
def judged_campaign(db):
    """A campaign judged by three annotators, aggregated."""
    campaign = create(
        make_corpus(40), name="round one", size=12, gold_share=0.2, gold_min_answers=100
    )
    people = [UserFactory(username=f"judge-{n}", role="annotator") for n in range(3)]
    judge_with_services(campaign, people, items=8)
    Judgment.objects.filter(pk=Judgment.objects.order_by("pk").first().pk).update(flagged=True)
    campaign_aggregate(campaign=campaign)
    campaign.refresh_from_db()
    return campaign


def test_campaign_list_shows_progress(researcher_client, judged_campaign):
    html = researcher_client.get(reverse("annotation:campaign_list")).content.decode()
    assert "round one" in html and "teacher" in html
    assert "stratified" not in html  # uniform sampling
    assert 'role="progressbar"' in html
    assert reverse("annotation:campaign_detail", args=[judged_campaign.pk]) in html
    assert f'href="{reverse("annotation:campaign_list")}"' in html  # nav


def test_campaign_detail_shows_the_stats_chart_and_annotators(researcher_client, judged_campaign):
    url = reverse("annotation:campaign_detail", args=[judged_campaign.pk])
    html = researcher_client.get(url).content.decode()
    for text in (
        "Krippendorff alpha, ordinal",
        "Fleiss kappa",
        "Pairwise agreement",
        "95% interval",
        'id="acceptance-by-relation"',
        '<svg class="acceptance-chart"',
        "judge-0",
        "judge-2",
        "Recompute now",
        f'hx-get="{reverse("annotation:campaign_live", args=[judged_campaign.pk])}"',
        'hx-trigger="every 5s"',
        "?kind=raw&amp;format=csv",
        "?kind=aggregated&amp;format=jsonl",
    ):
        assert text in html, text
    for relation in ("xNeed", "xIntent", "xWant", "oEffect"):
        assert f">{relation}</text>" in html  # a bar in the chart
    assert "Flagged offensive</dt><dd>1<" in html
    stats = judged_campaign.stats["overall"]
    assert f"{stats['alpha_ordinal']:.3f}" in html
    assert f"{100 * stats['acceptance']['rate']:.1f}%" in html
    assert not Job.objects.exists()  # nothing newer than the aggregation


def test_the_live_fragment_queues_an_aggregation_when_judgments_are_newer(
    researcher_client, judged_campaign
):
    url = reverse("annotation:campaign_live", args=[judged_campaign.pk])
    html = researcher_client.get(url, **HTMX).content.decode()
    assert html.lstrip().startswith('<div id="campaign-live"') and "<html" not in html
    assert not Job.objects.exists()

    late = UserFactory(role="annotator")
    judge_with_services(judged_campaign, [late], items=1)
    html = researcher_client.get(url, **HTMX).content.decode()
    researcher_client.get(url, **HTMX)
    job = Job.objects.get()  # one, however often the page polls
    assert job.kind == AGGREGATE_JOB
    assert job.params == {"campaign_id": judged_campaign.pk}
    assert "updating" in html


def test_recompute_now_queues_a_job(researcher_client, judged_campaign):
    url = reverse("annotation:campaign_recompute", args=[judged_campaign.pk])
    response = researcher_client.post(url)
    assert response.status_code == 302
    assert Job.objects.filter(kind=AGGREGATE_JOB).count() == 1


def test_pause_and_reinstate(researcher_client, judged_campaign):
    person = CampaignAnnotator.objects.filter(campaign=judged_campaign).first()
    url = reverse("annotation:annotator_standing", args=[judged_campaign.pk, person.annotator_id])
    response = researcher_client.post(url, {"action": "pause"})
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.paused
    html = researcher_client.get(
        reverse("annotation:campaign_detail", args=[judged_campaign.pk])
    ).content.decode()
    assert ">paused<" in html and 'value="reinstate"' in html
    researcher_client.post(url, {"action": "reinstate"})
    person.refresh_from_db()
    assert (person.paused, person.reinstated) == (False, True)


def test_grow_and_close(researcher_client, judged_campaign):
    pk = judged_campaign.pk
    researcher_client.post(reverse("annotation:campaign_grow", args=[pk]), {"size": 5})
    judged_campaign.refresh_from_db()
    assert judged_campaign.item_count == 17
    researcher_client.post(reverse("annotation:campaign_status", args=[pk]), {"status": "closed"})
    judged_campaign.refresh_from_db()
    assert judged_campaign.status == "closed"
    html = researcher_client.get(reverse("annotation:campaign_detail", args=[pk])).content.decode()
    assert ">Reopen<" in html


def test_create_a_campaign_from_the_form(researcher_client, researcher):
    corpus = make_corpus(40)
    page = researcher_client.get(reverse("annotation:campaign_create"))
    assert page.status_code == 200 and "create_campaign" in page.content.decode()
    reference = SimpleUploadedFile(
        "reference.tsv",
        "".join(f"PersonX reads book {i}\txNeed\tto open book {i}\n" for i in range(12)).encode(),
    )
    response = researcher_client.post(
        reverse("annotation:campaign_create"),
        {
            "corpus": corpus.pk,
            "name": "from the form",
            "size": 15,
            "sampling": "relation",
            "judgments_per_item": 2,
            "gold_share": 0.2,
            "gold_threshold": 0.7,
            "gold_min_answers": 5,
            "lease_seconds": 300,
            "instructions": "Be quick.",
            "seed": 4,
            "gold_reference": reference,
        },
    )
    campaign = Campaign.objects.get(name="from the form")
    assert response.status_code == 302
    assert response["Location"] == reverse("annotation:campaign_detail", args=[campaign.pk])
    assert (campaign.item_count, campaign.judgments_per_item, campaign.sampling) == (
        15,
        2,
        "relation",
    )
    assert (campaign.seed, campaign.lease_seconds, campaign.created_by) == (4, 300, researcher)
    sources = set(
        Item.objects.filter(campaign=campaign, is_gold=True).values_list("gold_source", flat=True)
    )
    assert sources == {"reference", "swap"}


def test_a_bad_campaign_shows_the_error_and_creates_nothing(researcher_client):
    corpus = make_corpus(12)
    data = {
        "corpus": corpus.pk,
        "name": "scored",
        "size": 5,
        "sampling": "score",
        "judgments_per_item": 3,
        "gold_share": 0.1,
        "gold_threshold": 0.7,
        "gold_min_answers": 5,
        "lease_seconds": 600,
    }
    response = researcher_client.post(reverse("annotation:campaign_create"), data)
    assert response.status_code == 200
    assert "needs critic scores" in response.content.decode()
    response = researcher_client.post(
        reverse("annotation:campaign_create"), data | {"sampling": "uniform", "lease_seconds": 1}
    )
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not Campaign.objects.exists()
    assert not Item.objects.exists()


def test_exports(researcher_client, judged_campaign):
    url = reverse("annotation:campaign_export", args=[judged_campaign.pk])
    response = researcher_client.get(url, {"kind": "raw", "format": "csv"})
    assert response.status_code == 200
    assert 'filename="round-one-raw.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert tuple(rows[0]) == JUDGMENT_EXPORT_FIELDS
    assert len(rows) - 1 == Judgment.objects.filter(campaign=judged_campaign).count() == 24
    assert {row[7] for row in rows[1:]} <= {"2", "1", "-1", "-2", "-9"}

    response = researcher_client.get(url, {"kind": "aggregated", "format": "jsonl"})
    assert response["Content-Type"] == "application/x-ndjson"
    assert 'filename="round-one-aggregated.jsonl"' in response["Content-Disposition"]
    lines = [orjson.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert len(lines) == judged_campaign.item_count
    assert any(line["majority"] is not None for line in lines)
    assert {"head", "relation", "tail", "majority", "ds_label"} <= set(lines[0])

    assert researcher_client.get(url, {"kind": "everything"}).status_code == 400


def test_annotators_get_403_on_researcher_pages(annotator_client, judged_campaign):
    pk = judged_campaign.pk
    for name in ("campaign_detail", "campaign_live", "campaign_export"):
        assert annotator_client.get(reverse(f"annotation:{name}", args=[pk])).status_code == 403
    for name in ("campaign_list", "campaign_create"):
        assert annotator_client.get(reverse(f"annotation:{name}")).status_code == 403
    for name in ("campaign_recompute", "campaign_grow", "campaign_status"):
        assert annotator_client.post(reverse(f"annotation:{name}", args=[pk])).status_code == 403
    someone = CampaignAnnotator.objects.filter(campaign=judged_campaign).first().annotator_id
    standing = reverse("annotation:annotator_standing", args=[pk, someone])
    assert annotator_client.post(standing, {"action": "pause"}).status_code == 403
    assert not CampaignAnnotator.objects.filter(paused=True).exists()
    assert annotator_client.post(reverse("annotation:campaign_create"), {}).status_code == 403
