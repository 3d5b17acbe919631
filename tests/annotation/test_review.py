"""The review page, its filters and the API; adjudication and its precedence in aggregation,
the aggregated export and the critic's training labels."""

import csv
import io
import itertools

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.errors import AnnotationError
from annotation.exporting import judgment_export_chunks
from annotation.models import Campaign, Item
from annotation.review import ReviewFilter, review_items, review_rows
from annotation.services.adjudication import item_adjudicate
from annotation.services.aggregation import campaign_aggregate
from annotation.services.campaigns import campaign_create
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from annotation.services.membership import member_add
from annotation.services.standing import annotator_pause
from corpora.scores import score_set_write
from critic.labels import corpus_labels
from tests.annotation.conftest import make_corpus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}

# What each of three annotators answers on the regular items, by their order; "f" flags.
ANSWERS = {
    0: (2, 2, 2),  # unanimous: acceptable
    1: (2, 2, -2),  # disagreement, 2 of 3
    2: (-2, -2, -2),  # unanimous: not acceptable
    3: (1, -1, -9),  # disagreement, a tie
    4: (2, "f2", 2),  # flagged offensive
    5: (-1, -1, -1),  # the critic says 0.95: critic and crowd disagree
    6: (2, 2, 2),  # the critic says 0.05: critic and crowd disagree
    7: (2, 2, 2),  # the critic says 0.5: not confident
}
SCORES = {5: 0.95, 6: 0.05, 7: 0.5, 0: 0.9, 2: 0.1}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def regular(campaign) -> list[Item]:
    return list(Item.objects.filter(campaign=campaign, is_gold=False).order_by("position"))


def judge(campaign, people, answer):
    """Each annotator judges everything they are given; answer(who, item) -> value or 'fN'."""
    for who, person in enumerate(people):
        member_add(campaign=campaign, annotator=person)
        while lease := assignment_next(campaign=campaign, annotator=person):
            value = answer(who, lease.item)
            flagged = isinstance(value, str)
            judgment_submit(
                assignment_id=lease.pk,
                annotator=person,
                value=int(value[1:]) if flagged else value,
                flagged=flagged,
            )


@pytest.fixture
def crafted(db):
    """A campaign of 8 regular items and 2 gold, judged by three annotators as ANSWERS
    says (the third misses the first gold item), aggregated; critic scores as SCORES says."""
    corpus = make_corpus(40)
    campaign = campaign_create(
        corpus=corpus, name="review me", size=8, gold_share=0.5, gold_count=2, seed=5
    )
    items = regular(campaign)
    order = {item.pk: n for n, item in enumerate(items)}
    gold = list(Item.objects.filter(campaign=campaign, is_gold=True).order_by("pk"))
    missed = gold[0]
    people = [UserFactory(username=f"judge-{n}", role="annotator") for n in range(3)]

    def answer(who, item):
        if item.is_gold:
            right = 2 if item.gold_acceptable else -2
            return -right if (who == 2 and item.pk == missed.pk) else right
        return ANSWERS[order[item.pk]][who]

    judge(campaign, people, answer)
    score_set_write(corpus=corpus, scores={items[n].triple_id: s for n, s in SCORES.items()})
    campaign_aggregate(campaign=campaign)
    return campaign, regular(campaign), gold, people


def ids(qs) -> set[int]:
    return {item.pk for item in qs}


def by_order(items, *numbers) -> set[int]:
    return {items[n].pk for n in numbers}


# --- Filters ---------------------------------------------------------------------------


def test_every_item_is_listed_with_every_answer(crafted):
    campaign, items, gold, people = crafted
    listed = list(review_items(campaign=campaign))
    assert ids(listed) == {i.pk for i in items} | {g.pk for g in gold}
    rows = {row.item.pk: row for row in review_rows(campaign=campaign, items=listed)}
    row = rows[items[4].pk]
    assert [a.annotator for a in row.answers] == ["judge-0", "judge-1", "judge-2"]
    assert [a.flagged for a in row.answers] == [False, True, False]
    assert all(a.seconds is not None and a.created_at for a in row.answers)
    assert rows[items[5].pk].critic_score == pytest.approx(0.95)
    assert rows[items[1].pk].item.majority is True


def test_disagreement_lists_items_with_answers_on_both_sides(crafted):
    campaign, items, gold, _ = crafted
    found = ids(review_items(campaign=campaign, flt=ReviewFilter(kind="disagreement")))
    # The missed gold item has answers on both sides too.
    assert found == by_order(items, 1, 3) | {gold[0].pk}


def test_low_agreement_follows_its_threshold(crafted):
    campaign, items, _, _ = crafted
    low = ids(review_items(campaign=campaign, flt=ReviewFilter(kind="low_agreement")))
    assert low == by_order(items, 1, 3)  # 2/3 and a tie (0.5)
    lower = ReviewFilter(kind="low_agreement", agreement_below=0.6)
    assert ids(review_items(campaign=campaign, flt=lower)) == by_order(items, 3)


def test_flagged_and_gold_missed(crafted):
    campaign, items, gold, _ = crafted
    flagged = ids(review_items(campaign=campaign, flt=ReviewFilter(kind="flagged")))
    assert flagged == by_order(items, 4)
    missed = ids(review_items(campaign=campaign, flt=ReviewFilter(kind="gold_missed")))
    assert missed == {gold[0].pk}


def test_critic_and_crowd_disagreeing_follows_the_settable_confidence(crafted):
    campaign, items, _, _ = crafted
    found = ids(review_items(campaign=campaign, flt=ReviewFilter(kind="critic_disagrees")))
    assert found == by_order(items, 5, 6)
    strict = ReviewFilter(kind="critic_disagrees", critic_high=0.99, critic_low=0.01)
    assert ids(review_items(campaign=campaign, flt=strict)) == set()
    loose = ReviewFilter(kind="critic_disagrees", critic_high=0.7, critic_low=0.6)
    assert ids(review_items(campaign=campaign, flt=loose)) == by_order(items, 5, 6, 7)


def test_critic_filter_on_a_corpus_without_scores_is_empty(db):
    corpus = make_corpus(20)
    campaign = campaign_create(corpus=corpus, name="unscored", size=4, gold_share=0.0)
    flt = ReviewFilter(kind="critic_disagrees")
    assert list(review_items(campaign=campaign, flt=flt)) == []


def test_adjudicated_or_not(crafted, researcher):
    campaign, items, gold, _ = crafted
    item_adjudicate(item=items[1], value=-2, by=researcher)
    yes = ids(review_items(campaign=campaign, flt=ReviewFilter(adjudicated="yes")))
    assert yes == by_order(items, 1)
    no = ReviewFilter(kind="disagreement", adjudicated="no")
    assert ids(review_items(campaign=campaign, flt=no)) == by_order(items, 3) | {gold[0].pk}


def test_bad_filters_are_refused_with_their_field(crafted):
    campaign, *_ = crafted
    for flt, field in [
        (ReviewFilter(kind="everything"), "filter"),
        (ReviewFilter(adjudicated="maybe"), "adjudicated"),
        (ReviewFilter(agreement_below=1.5), "agreement_below"),
        (ReviewFilter(critic_low=0.9, critic_high=0.8), "critic_low"),
    ]:
        with pytest.raises(AnnotationError) as refused:
            review_items(campaign=campaign, flt=flt)
        assert refused.value.field == field


# --- Adjudication ----------------------------------------------------------------------


def test_adjudication_records_who_and_when_and_clearing_restores_the_crowd(crafted, researcher):
    campaign, items, _, _ = crafted
    item = items[0]  # the crowd: acceptable
    assert item.label is True
    item = item_adjudicate(item=item, value=-2, by=researcher)
    assert item.adjudicated_value == -2
    assert item.adjudicated_by == researcher and item.adjudicated_at is not None
    assert item.label is False and item.label_used.source == "adjudicated"
    assert item.label_used.confidence == 1.0
    assert item.majority is True  # the crowd's label stays beside it
    item = item_adjudicate(item=item, value=None, by=researcher)
    assert item.adjudicated_value is None and item.adjudicated_by is None
    assert item.adjudicated_at is None
    assert item.label is True and item.label_used.source == "dawid_skene"


def test_adjudication_refuses_values_off_the_scale_and_gold(crafted, researcher):
    _, items, gold, _ = crafted
    with pytest.raises(AnnotationError) as refused:
        item_adjudicate(item=items[0], value=3, by=researcher)
    assert refused.value.field == "value"
    with pytest.raises(AnnotationError):
        item_adjudicate(item=gold[0], value=2, by=researcher)
    assert Item.objects.filter(adjudicated_value__isnull=False).count() == 0


def test_adjudication_queues_an_aggregation(
    crafted, researcher, django_capture_on_commit_callbacks
):
    from annotation.services.aggregation import AGGREGATE_JOB
    from jobs.models import Job

    _, items, _, _ = crafted
    with django_capture_on_commit_callbacks(execute=False):
        item_adjudicate(item=items[0], value=-2, by=researcher)
    assert Job.objects.filter(kind=AGGREGATE_JOB).count() == 1


def test_adjudication_overrides_aggregation(crafted, researcher):
    campaign, items, _, _ = crafted
    before = campaign_aggregate(campaign=campaign)
    # The crowd accepted items 0, 1, 4, 6, 7 of 7 decided (item 3 is a tie).
    acceptance = before["overall"]["acceptance"]
    assert (acceptance["accepted"], acceptance["decided"]) == (5, 7)
    relation = items[0].relation.name

    def accepted_in_relation(stats) -> int:
        row = next(r for r in stats["by_relation"] if r["relation"] == relation)
        return row["acceptance"]["accepted"]

    item_adjudicate(item=items[0], value=-1, by=researcher)  # accepted -> rejected
    item_adjudicate(item=items[3], value=2, by=researcher)  # a tie -> accepted
    stats = campaign_aggregate(campaign=campaign)
    acceptance = stats["overall"]["acceptance"]
    assert (acceptance["accepted"], acceptance["decided"]) == (5, 8)
    assert stats["items_adjudicated"] == 2 and stats["items_labelled"] == 8
    assert accepted_in_relation(stats) == accepted_in_relation(before) - 1
    assert Item.objects.get(pk=items[0].pk).majority is True  # the crowd's label stays
    # Clearing gives the crowd's label back to the measures.
    item_adjudicate(item=items[0], value=None, by=researcher)
    item_adjudicate(item=items[3], value=None, by=researcher)
    again = campaign_aggregate(campaign=campaign)
    assert again["overall"]["acceptance"] == before["overall"]["acceptance"]
    assert again["items_adjudicated"] == 0


def test_adjudicated_items_nobody_judged_count_too(db, researcher):
    corpus = make_corpus(20)
    campaign = campaign_create(corpus=corpus, name="unjudged", size=4, gold_share=0.0)
    item = regular(campaign)[0]
    item_adjudicate(item=item, value=2, by=researcher)
    stats = campaign_aggregate(campaign=campaign)
    assert stats["overall"]["acceptance"]["accepted"] == 1
    assert stats["by_relation"][0]["relation"] == item.relation.name


def test_a_paused_annotators_answers_are_marked(crafted):
    campaign, items, _, people = crafted
    annotator_pause(campaign=campaign, annotator=people[2])
    row = review_rows(campaign=campaign, items=[items[1]])[0]
    assert [a.excluded for a in row.answers] == [False, False, True]


def aggregated_export(campaign) -> dict[int, dict]:
    text = b"".join(judgment_export_chunks(campaign=campaign, fmt="csv", aggregated=True))
    return {int(r["item"]): r for r in csv.DictReader(io.StringIO(text.decode()))}


def test_the_aggregated_export_carries_the_adjudication(crafted, researcher):
    campaign, items, _, _ = crafted
    item_adjudicate(item=items[0], value=-2, by=researcher)
    rows = aggregated_export(campaign)
    row = rows[items[0].pk]
    assert row["adjudicated_value"] == "-2"
    assert row["adjudicated_by"] == researcher.username
    assert row["adjudicated_at"]
    assert row["majority"] == "True"  # the crowd's
    assert (row["label"], row["label_source"], row["label_confidence"]) == (
        "False",
        "adjudicated",
        "1.0",
    )
    other = rows[items[2].pk]
    assert other["adjudicated_value"] == "" and other["label"] == "False"
    assert other["label_source"] == "dawid_skene"
    item_adjudicate(item=items[0], value=None, by=researcher)
    assert aggregated_export(campaign)[items[0].pk]["label"] == "True"


def label_of(corpus_id, triple_id, audit=False):
    labels = corpus_labels(corpus_id=corpus_id)
    labels = labels.auditing if audit else labels.learning
    found = labels.labels[labels.triple_ids == triple_id]
    return int(found[0]) if len(found) else None


def test_the_critics_training_labels_take_the_adjudicated_value(crafted, researcher):
    campaign, items, _, _ = crafted
    corpus = campaign.corpus_id
    assert label_of(corpus, items[0].triple_id) == 1
    assert label_of(corpus, items[2].triple_id) == 0
    events = corpus_labels(corpus_id=corpus).learning.learning_events
    item_adjudicate(item=items[0], value=-2, by=researcher)
    item_adjudicate(item=items[2], value=1, by=researcher)
    # Adjudications count toward the critic's next retraining as new labels.
    assert corpus_labels(corpus_id=corpus).learning.learning_events == events + 2
    assert label_of(corpus, items[0].triple_id) == 0
    assert label_of(corpus, items[2].triple_id) == 1
    # "Can't judge" as the final label: no label to train on, whatever the crowd said.
    item_adjudicate(item=items[6], value=-9, by=researcher)
    assert label_of(corpus, items[6].triple_id) is None
    item_adjudicate(item=items[0], value=None, by=researcher)
    assert label_of(corpus, items[0].triple_id) == 1


def test_an_adjudicated_label_wins_over_a_later_campaign_of_the_same_triple(crafted, researcher):
    campaign, items, _, _ = crafted
    item_adjudicate(item=items[0], value=-2, by=researcher)
    # A later campaign on the same corpus, aggregated after, labels the triple acceptable.
    later = campaign_create(corpus=campaign.corpus, name="later", size=40, gold_share=0.0)
    people = [UserFactory(role="annotator") for _ in range(3)]
    answers = itertools.cycle((2, 1))  # acceptable, without a run of one answer
    judge(later, people, lambda who, item: next(answers))
    campaign_aggregate(campaign=later)
    assert Item.objects.get(campaign=later, triple_id=items[0].triple_id).majority is True
    assert label_of(campaign.corpus_id, items[0].triple_id) == 0


def test_audit_campaigns_adjudicated_labels_are_still_never_trained_on(db, researcher):
    corpus = make_corpus(20)
    audit = campaign_create(
        corpus=corpus, name="audit", size=4, gold_share=0.0, purpose=Campaign.Purpose.AUDIT
    )
    item = regular(audit)[0]
    item_adjudicate(item=item, value=2, by=researcher)
    assert label_of(corpus.pk, item.triple_id) is None
    assert label_of(corpus.pk, item.triple_id, audit=True) == 1


# --- Pages -----------------------------------------------------------------------------


def review_url(campaign) -> str:
    return reverse("annotation:campaign_review", args=[campaign.pk])


def adjudicate_url(item) -> str:
    return reverse("annotation:item_adjudicate", args=[item.campaign_id, item.pk])


def test_the_campaign_page_links_the_review(researcher_client, crafted):
    campaign, *_ = crafted
    html = researcher_client.get(reverse("annotation:campaign_detail", args=[campaign.pk]))
    assert review_url(campaign) in html.content.decode()


def test_the_review_page_filters_by_the_querystring(researcher_client, crafted):
    campaign, items, gold, _ = crafted
    html = researcher_client.get(review_url(campaign)).content.decode()
    assert "10 items" in html and 'id="review-filters"' in html
    assert all(f'id="item-{i.pk}"' in html for i in items)
    assert "judge-1" in html and "offensive" in html
    response = researcher_client.get(review_url(campaign) + "?filter=disagreement", **HTMX)
    html = response.content.decode()
    assert "<html" not in html and 'id="review-results"' in html  # the fragment alone
    shown = {i.pk for i in items + gold if f'id="item-{i.pk}"' in html}
    assert shown == by_order(items, 1, 3) | {gold[0].pk}
    assert "3 items match these filters" in html


def test_a_bad_filter_is_said_on_the_page(researcher_client, crafted):
    campaign, *_ = crafted
    html = researcher_client.get(review_url(campaign) + "?agreement_below=2").content.decode()
    assert "less than or equal to 1" in html
    html = researcher_client.get(
        review_url(campaign) + "?filter=critic_disagrees&critic_low=0.9&critic_high=0.5"
    ).content.decode()
    assert "low score must be below its high score" in html


def test_the_review_page_paginates(researcher_client, db):
    corpus = make_corpus(80)
    campaign = campaign_create(corpus=corpus, name="big", size=60, gold_share=0.0)
    html = researcher_client.get(review_url(campaign)).content.decode()
    assert "60 items" in html and "Page 1 of 3" in html and 'rel="next"' in html
    last = researcher_client.get(review_url(campaign) + "?page=3").content.decode()
    assert last.count('class="review-row"') == 10


def test_adjudicating_from_the_page_swaps_the_row(researcher_client, researcher, crafted):
    campaign, items, _, _ = crafted
    item = items[1]
    response = researcher_client.post(
        adjudicate_url(item), {"value": "-2", "back": "filter=disagreement"}, **HTMX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<tr id="item-{item.pk}"')
    assert f"by {researcher.username}" in html and "invalid" in html
    item.refresh_from_db()
    assert item.adjudicated_value == -2 and item.adjudicated_by == researcher
    # Clearing, then a refusal shown in the row.
    html = researcher_client.post(adjudicate_url(item), {"clear": "1"}, **HTMX).content.decode()
    item.refresh_from_db()
    assert item.adjudicated_value is None and f"by {researcher.username}" not in html
    html = researcher_client.post(adjudicate_url(item), {"value": "7"}, **HTMX).content.decode()
    assert "Choose a value on the scale" in html


def test_adjudicating_without_javascript_redirects_back_to_the_filters(researcher_client, crafted):
    campaign, items, _, _ = crafted
    response = researcher_client.post(
        adjudicate_url(items[1]), {"value": "2", "back": "filter=disagreement&evil=1"}
    )
    assert response.status_code == 302
    assert response["Location"] == (
        f"{review_url(campaign)}?filter=disagreement#item-{items[1].pk}"
    )


def test_an_item_of_another_campaign_is_not_found(researcher_client, crafted):
    campaign, items, _, _ = crafted
    url = reverse("annotation:item_adjudicate", args=[campaign.pk + 1, items[0].pk])
    assert researcher_client.post(url, {"value": "2"}).status_code == 404


def test_non_researchers_get_403(annotator_client, annotator, crafted):
    campaign, items, _, _ = crafted
    member_add(campaign=campaign, annotator=annotator)
    assert annotator_client.get(review_url(campaign)).status_code == 403
    assert annotator_client.post(adjudicate_url(items[0]), {"value": "2"}).status_code == 403
    api = APIClient()
    api.force_authenticate(annotator)
    assert api.get(f"/api/campaigns/{campaign.pk}/review/").status_code == 403
    response = api.post(f"/api/items/{items[0].pk}/adjudication/", {"value": 2}, format="json")
    assert response.status_code == 403
    assert Item.objects.filter(adjudicated_value__isnull=False).count() == 0


# --- API -------------------------------------------------------------------------------


@pytest.fixture
def api(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    return client


def test_the_review_api_filters_and_lists_answers(api, crafted):
    campaign, items, gold, _ = crafted
    body = api.get(f"/api/campaigns/{campaign.pk}/review/?filter=disagreement").json()
    assert body["count"] == 3 and body["count_capped"] is False
    assert {r["id"] for r in body["results"]} == by_order(items, 1, 3) | {gold[0].pk}
    row = next(r for r in body["results"] if r["id"] == items[1].pk)
    assert [a["value"] for a in row["answers"]] == [2, 2, -2]
    assert {"annotator", "created_at", "seconds", "flagged", "excluded"} <= set(row["answers"][0])
    assert row["majority"] is True and row["label"] is True
    assert row["adjudicated_value"] is None
    body = api.get(f"/api/campaigns/{campaign.pk}/review/?filter=critic_disagrees").json()
    assert {r["id"] for r in body["results"]} == by_order(items, 5, 6)
    assert {r["critic_score"] for r in body["results"]} == {0.95, 0.05}


def test_the_review_api_refuses_bad_filters(api, crafted):
    campaign, *_ = crafted
    response = api.get(f"/api/campaigns/{campaign.pk}/review/?filter=everything")
    assert response.status_code == 400 and "filter" in response.json()
    response = api.get(
        f"/api/campaigns/{campaign.pk}/review/?filter=critic_disagrees&critic_low=0.9"
    )
    assert response.status_code == 400 and response.json()["field"] == "critic_low"


def test_the_adjudication_api_sets_and_clears(api, researcher, crafted):
    campaign, items, gold, _ = crafted
    url = f"/api/items/{items[0].pk}/adjudication/"
    body = api.post(url, {"value": -2}, format="json").json()
    assert body["adjudicated_value"] == -2 and body["adjudicated_by"] == researcher.username
    assert body["label"] is False and body["label_source"] == "adjudicated"
    assert body["majority"] is True
    body = api.post(url, {"value": None}, format="json").json()
    assert body["adjudicated_value"] is None and body["label"] is True
    refused = api.post(url, {"value": 5}, format="json")
    assert refused.status_code == 400
    refused = api.post(f"/api/items/{gold[0].pk}/adjudication/", {"value": 2}, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "item"
    assert (
        api.post("/api/items/999999/adjudication/", {"value": 2}, format="json").status_code == 404
    )


# --- Command line ----------------------------------------------------------------------


def test_the_command_line_adjudicates_through_the_same_service(crafted, researcher):
    import io

    from django.core.management import CommandError, call_command

    _, items, gold, _ = crafted
    out = io.StringIO()
    call_command("adjudicate", str(items[0].pk), "--value=-2", f"--by={researcher}", stdout=out)
    assert "final label -2 (invalid)" in out.getvalue()
    item = Item.objects.get(pk=items[0].pk)
    assert item.adjudicated_value == -2 and item.adjudicated_by == researcher
    call_command("adjudicate", str(items[0].pk), "--clear", stdout=out)
    assert Item.objects.get(pk=items[0].pk).adjudicated_value is None
    with pytest.raises(CommandError, match="known answer"):
        call_command("adjudicate", str(gold[0].pk), "--value=2", stdout=out)
    with pytest.raises(CommandError, match="Select a valid choice"):
        call_command("adjudicate", str(items[0].pk), "--value=3", stdout=out)
