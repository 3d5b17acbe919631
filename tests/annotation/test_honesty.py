"""Honesty checks (issue 17, item 4): gold is front-loaded and looks like the campaign's
own items; annotators are paused, with a stated reason, for low gold accuracy,
straight-lining and answering much faster than the crowd; a reinstated annotator stays
reinstated; the campaign page warns when k exceeds the annotators who can still judge."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.errors import AnnotatorPaused
from annotation.models import Assignment, CampaignAnnotator, Item
from annotation.services.campaigns import campaign_create
from annotation.services.joining import join_link_create, join_link_revoke
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from annotation.services.membership import member_add
from annotation.services.standing import annotator_pause, annotator_reinstate
from corpora.models import Event, Relation
from tests.annotation.conftest import make_corpus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def create(corpus, **kwargs):
    options = {"name": "honest", "size": 60, "gold_share": 0.1, "seed": 5} | kwargs
    return campaign_create(corpus=corpus, **options)


def member(campaign):
    user = UserFactory(role="annotator")
    member_add(campaign=campaign, annotator=user)
    return user


def judge(campaign, user, value_of, count: int, seconds: float = 5.0, start=None):
    """Claim and answer up to `count` items; value_of(item) picks the answer. The results."""
    now = start or timezone.now()
    results = []
    for _ in range(count):
        lease = assignment_next(campaign=campaign, annotator=user, now=now)
        if lease is None:
            break
        now += timedelta(seconds=seconds)
        item = Item.objects.get(pk=lease.item_id)
        results.append(
            judgment_submit(assignment_id=lease.pk, annotator=user, value=value_of(item), now=now)
        )
        now += timedelta(seconds=0.5)
        if results[-1].paused:
            break
    return results


def test_every_annotator_meets_five_gold_items_in_their_first_twenty():
    corpus = make_corpus(200)
    campaign = create(corpus, size=150, gold_share=0.05)
    for _ in range(6):
        user = member(campaign)
        judge(
            campaign,
            user,
            lambda item: 2 if not item.is_gold or item.gold_acceptable else -2,
            20,
        )
        first = Assignment.objects.filter(annotator=user).order_by("pk")[:20]
        gold = sum(Item.objects.get(pk=a.item_id).is_gold for a in first)
        assert gold >= 5


def test_gold_has_only_the_campaigns_relations_and_head_shapes(tmp_path):
    corpus = make_corpus(80, relations=("xNeed", "xWant"))
    reference = tmp_path / "references.tsv"
    rows = []
    for i in range(30):
        rows.append(f"PersonX refers {i}\txNeed\tneed {i}")
        rows.append(f"PersonX refers {i}\toReact\tfeel {i}")  # a relation the corpus lacks
        rows.append(f"PersonX eats ___ at {i}\txWant\twant {i}")  # a blank head
    reference.write_text("\n".join(rows) + "\n")
    campaign = create(corpus, size=40, gold_share=0.5, gold_reference=reference)
    gold = Item.objects.filter(campaign=campaign, is_gold=True)
    assert gold.exists()
    own = {Relation.objects.get(name=n).pk for n in ("xNeed", "xWant")}
    assert set(gold.values_list("relation_id", flat=True)) <= own
    heads = Event.objects.filter(pk__in=gold.values("head_id")).values_list("text", flat=True)
    assert not [h for h in heads if "___" in h]


def test_the_issues_straight_liner_with_half_gold_right_is_paused_by_33_judgments():
    """Reported: 13 "invalid" in a row, 50% gold accuracy, still active after 33 judgments
    because only 4 gold items had come up."""
    corpus = make_corpus(200)
    campaign = create(corpus, size=150, gold_share=0.1)
    user = member(campaign)
    gold_answers = iter([True, False] * 20)

    def value_of(item):
        if item.is_gold:  # half of the gold right
            ok = next(gold_answers)
            return (
                (2 if item.gold_acceptable else -2) if ok else (-2 if item.gold_acceptable else 2)
            )
        return -2  # invalid, every time

    results = judge(campaign, user, value_of, 33)
    standing = CampaignAnnotator.objects.get(campaign=campaign, annotator=user)
    assert standing.paused
    assert len(results) <= 33 and results[-1].paused
    assert standing.pause_reason  # gold accuracy or straight-lining, said in words
    with pytest.raises(AnnotatorPaused, match=standing.pause_reason.split(" (")[0]):
        assignment_next(campaign=campaign, annotator=user)


def test_a_run_of_one_answer_pauses_with_the_reason():
    corpus = make_corpus(120)
    campaign = create(corpus, size=100, gold_share=0.0, straight_line_run=8)
    user = member(campaign)
    results = judge(campaign, user, lambda item: -2, 30)
    assert results[-1].paused
    assert 8 <= len(results) < 8 + 5
    standing = CampaignAnnotator.objects.get(campaign=campaign, annotator=user)
    assert standing.pause_reason.startswith("straight-lining: the same answer (invalid) ")
    assert "times in a row" in standing.pause_reason


def varied(item):
    return (2, 1, -1, -2)[item.pk % 4]


def test_answers_far_less_varied_than_the_crowds_pause():
    corpus = make_corpus(300)
    campaign = create(corpus, size=250, gold_share=0.0, judgments_per_item=3, speed_floor=0.0)
    for _ in range(2):
        judge(campaign, member(campaign), varied, 40)
    counter = iter(range(1000))
    results = judge(
        campaign, member(campaign), lambda item: 1 if next(counter) % 14 == 13 else 2, 60
    )
    assert results[-1].paused
    reason = CampaignAnnotator.objects.filter(paused=True).get().pause_reason
    assert reason.startswith("straight-lining: answers far less varied than the crowd's")


def test_answering_much_faster_than_the_crowd_pauses():
    corpus = make_corpus(300)
    campaign = create(corpus, size=250, gold_share=0.0, speed_floor=0.25)
    for _ in range(2):
        judge(campaign, member(campaign), varied, 30, seconds=8.0)
    fast = member(campaign)
    results = judge(campaign, fast, varied, 40, seconds=1.0)
    assert results[-1].paused
    assert len(results) < 30
    reason = CampaignAnnotator.objects.get(annotator=fast).pause_reason
    assert reason.startswith("too fast: median 1.0 s per judgment against the crowd's 8.0 s")


def test_a_reinstated_annotator_is_not_paused_again_by_the_checks():
    corpus = make_corpus(120)
    campaign = create(corpus, size=100, gold_share=0.0, straight_line_run=8)
    user = member(campaign)
    assert judge(campaign, user, lambda item: -2, 30)[-1].paused
    annotator_reinstate(campaign=campaign, annotator=user)
    results = judge(campaign, user, lambda item: -2, 30)
    assert len(results) == 30 and not any(r.paused for r in results)
    standing = CampaignAnnotator.objects.get(annotator=user)
    assert not standing.paused and standing.pause_reason == ""


def test_low_gold_accuracy_and_a_researchers_pause_say_why(researcher_client):
    corpus = make_corpus(120)
    campaign = create(corpus, size=100, gold_share=0.2)
    liar = member(campaign)
    judge(
        campaign,
        liar,
        lambda item: (-2 if item.gold_acceptable else 2) if item.is_gold else varied(item),
        40,
    )
    standing = CampaignAnnotator.objects.get(annotator=liar)
    assert standing.paused
    assert standing.pause_reason.startswith("gold accuracy 0% (0 of 5 right), below 70%")
    other = member(campaign)
    annotator_pause(campaign=campaign, annotator=other)
    page = researcher_client.get(reverse("annotation:campaign_detail", args=[campaign.pk]))
    text = page.content.decode()
    assert "gold accuracy 0% (0 of 5 right), below 70%" in text
    assert "paused by a researcher" in text


def test_the_campaign_page_warns_when_k_exceeds_who_can_judge(researcher, researcher_client):
    corpus = make_corpus(40)
    campaign = create(corpus, size=10, judgments_per_item=3, gold_share=0.0)
    url = reverse("annotation:campaign_live", args=[campaign.pk])
    first, second = member(campaign), member(campaign)
    member_add(campaign=campaign, annotator=researcher)  # looking, not judging: not counted
    text = researcher_client.get(url).content.decode()
    assert "k=3 but only 2 annotators can still judge: items will never complete" in text
    third = member(campaign)
    assert "items will never complete" not in researcher_client.get(url).content.decode()
    annotator_pause(campaign=campaign, annotator=third)
    third.is_active = True
    second.is_active = False  # deactivated
    second.save()
    text = researcher_client.get(url).content.decode()
    assert "k=3 but only 1 annotator can still judge" in text
    judge(campaign, researcher, varied, 1)  # a researcher who judges counts
    assert "only 2 annotators" in researcher_client.get(url).content.decode()
    assert first.is_active


def test_a_join_link_that_can_still_bring_annotators_silences_the_k_warning(researcher_client):
    campaign = create(make_corpus(40), size=10, judgments_per_item=3, gold_share=0.0)
    url = reverse("annotation:campaign_live", args=[campaign.pk])
    member(campaign)
    assert "k=3 but only 1 annotator can still judge" in researcher_client.get(url).content.decode()
    link = join_link_create(campaign=campaign, platform="prolific", max_uses=1)
    text = researcher_client.get(url).content.decode()
    assert "k=3 but only 1 annotator (and at most 1 more through its join links)" in text
    join_link_revoke(link=link)
    join_link_create(campaign=campaign, platform="prolific")  # no limit: anyone may come
    assert "items will never complete" not in researcher_client.get(url).content.decode()
