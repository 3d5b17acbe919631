"""Training and qualification (issue 17, item 3): a newcomer answers a block of gold items,
sees the expected answer and its reason after each, and reaches real items only once a
round is good enough; who fails every round is paused with the reason."""

import pytest
from django.urls import reverse

from annotation.errors import AnnotatorPaused, TrainingRequired
from annotation.models import Assignment, CampaignAnnotator, Item, Judgment, TrainingAnswer
from annotation.services.campaigns import campaign_create
from annotation.services.judgments import judgment_submit
from annotation.services.leasing import assignment_next
from annotation.services.membership import member_add
from annotation.services.training import training_answer, training_items, training_next
from tests.annotation.conftest import make_corpus

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
RELATIONS = ("xNeed", "xIntent", "xWant", "oEffect")


def write_reference(path, n: int = 24):
    """Human-written triples for gold: the campaign's relations, heads like theirs."""
    lines = [
        f"PersonX reference event {i}\t{RELATIONS[i % 4]}\treference tail {i}" for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def training_campaign(tmp_path, **kwargs):
    corpus = make_corpus(80)
    options = {
        "name": "trained",
        "size": 40,
        "gold_share": 0.2,
        "seed": 3,
        "training_size": 4,
        "qualification_threshold": 0.75,
        "training_tries": 2,
        "gold_reference": write_reference(tmp_path / "references.tsv"),
    } | kwargs
    return campaign_create(corpus=corpus, **options)


def right(item_id: int) -> int:
    return 2 if Item.objects.get(pk=item_id).gold_acceptable else -2


def wrong(item_id: int) -> int:
    return -2 if Item.objects.get(pk=item_id).gold_acceptable else 2


def answer_round(campaign, user, correct: int):
    """Answer the current round, the first `correct` answers right; the last feedback."""
    feedback = None
    for number in range(campaign.training_size):
        step = training_next(campaign=campaign, annotator=user)
        value = right(step.item_id) if number < correct else wrong(step.item_id)
        feedback = training_answer(
            campaign=campaign, annotator=user, item_id=step.item_id, value=value
        )
    return feedback


def test_rounds_are_deterministic_and_mix_acceptable_and_not(tmp_path):
    campaign = training_campaign(tmp_path)
    first = training_items(campaign=campaign, round=0)
    assert first == training_items(campaign=campaign, round=0)
    assert len(first) == 4
    kinds = set(Item.objects.filter(pk__in=first).values_list("gold_acceptable", flat=True))
    assert kinds == {True, False}
    second = training_items(campaign=campaign, round=1)
    assert not set(first) & set(second)


def test_gold_carries_its_reason(tmp_path):
    campaign = training_campaign(tmp_path)
    reference = Item.objects.filter(campaign=campaign, is_gold=True, gold_acceptable=True)
    swapped = Item.objects.filter(campaign=campaign, is_gold=True, gold_acceptable=False)
    assert reference.exists() and swapped.exists()
    for item in reference:
        assert item.gold_reason.startswith("People wrote this inference for this event in ")
    for item in swapped:
        assert item.gold_reason.startswith("This tail was written for another event: PersonX")


def test_a_newcomer_trains_before_real_items_and_then_qualifies(tmp_path, annotator):
    campaign = training_campaign(tmp_path)
    member_add(campaign=campaign, annotator=annotator)
    step = training_next(campaign=campaign, annotator=annotator)
    assert (step.round, step.number, step.size) == (1, 1, 4)
    with pytest.raises(TrainingRequired):
        assignment_next(campaign=campaign, annotator=annotator)

    feedback = training_answer(
        campaign=campaign, annotator=annotator, item_id=step.item_id, value=wrong(step.item_id)
    )
    assert not feedback.correct
    assert feedback.reason == Item.objects.get(pk=step.item_id).gold_reason
    assert feedback.expected.startswith(
        "Acceptable" if Item.objects.get(pk=step.item_id).gold_acceptable else "Not acceptable"
    )
    for _ in range(3):
        step = training_next(campaign=campaign, annotator=annotator)
        feedback = training_answer(
            campaign=campaign, annotator=annotator, item_id=step.item_id, value=right(step.item_id)
        )
    assert feedback.outcome == "qualified"  # 3 of 4 = 0.75
    assert "3 of 4 right" in feedback.message
    standing = CampaignAnnotator.objects.get(campaign=campaign, annotator=annotator)
    assert standing.qualified_at is not None
    assert training_next(campaign=campaign, annotator=annotator) is None
    assert assignment_next(campaign=campaign, annotator=annotator) is not None
    # Training answers are neither judgments nor leases.
    assert TrainingAnswer.objects.filter(annotator=annotator).count() == 4
    assert not Judgment.objects.filter(annotator=annotator).exists()
    assert Assignment.objects.filter(annotator=annotator).count() == 1


def test_failing_a_round_gives_another_then_a_pause_with_the_reason(tmp_path, annotator):
    campaign = training_campaign(tmp_path)
    member_add(campaign=campaign, annotator=annotator)
    first = training_items(campaign=campaign, round=0)
    feedback = answer_round(campaign, annotator, correct=2)
    assert feedback.outcome == "again"
    step = training_next(campaign=campaign, annotator=annotator)
    assert step.round == 2 and step.item_id not in first
    feedback = answer_round(campaign, annotator, correct=1)
    assert feedback.outcome == "paused"
    standing = CampaignAnnotator.objects.get(campaign=campaign, annotator=annotator)
    assert standing.paused
    assert standing.pause_reason == "did not pass training (1 of 4 right)"
    with pytest.raises(AnnotatorPaused, match=r"did not pass training \(1 of 4 right\)"):
        training_next(campaign=campaign, annotator=annotator)


def test_fail_then_pass(tmp_path, annotator):
    campaign = training_campaign(tmp_path)
    member_add(campaign=campaign, annotator=annotator)
    assert answer_round(campaign, annotator, correct=0).outcome == "again"
    assert answer_round(campaign, annotator, correct=4).outcome == "qualified"
    assert assignment_next(campaign=campaign, annotator=annotator) is not None


def test_training_items_never_come_back_as_gold(tmp_path, annotator):
    campaign = training_campaign(tmp_path, gold_share=0.5)
    member_add(campaign=campaign, annotator=annotator)
    answer_round(campaign, annotator, correct=0)
    answer_round(campaign, annotator, correct=4)
    trained = set(TrainingAnswer.objects.filter(annotator=annotator).values_list("item", flat=True))
    seen = set()
    while (lease := assignment_next(campaign=campaign, annotator=annotator)) is not None:
        seen.add(lease.item_id)
        result = judgment_submit(assignment_id=lease.pk, annotator=annotator, value=2)
        if result.paused:  # answering 2 to swapped gold fails the gold check: reinstate
            from annotation.services.standing import annotator_reinstate

            annotator_reinstate(campaign=campaign, annotator=annotator)
    assert Item.objects.filter(pk__in=seen, is_gold=True).exists()
    assert not seen & trained


def test_the_judging_page_trains_with_feedback_and_a_next_button(tmp_path, client, annotator):
    campaign = training_campaign(tmp_path)
    member_add(campaign=campaign, annotator=annotator)
    client.force_login(annotator)
    url = reverse("annotation:judge", args=[campaign.pk])
    page = client.get(url).content.decode()
    assert "Training, round 1: item 1 of 4" in page
    step = training_next(campaign=campaign, annotator=annotator)
    response = client.post(
        url,
        {"action": "train", "training_item": step.item_id, "value": right(step.item_id)},
        **HTMX,
    )
    card = response.content.decode()
    assert "Right." in card
    assert Item.objects.get(pk=step.item_id).gold_reason in card.replace("&#x27;", "'")
    assert 'value="next"' in card
    card = client.post(url, {"action": "next"}, **HTMX).content.decode()
    assert "Training, round 1: item 2 of 4" in card
    # Without htmx, the feedback is on the page itself.
    step = training_next(campaign=campaign, annotator=annotator)
    response = client.post(
        url, {"action": "train", "training_item": step.item_id, "value": wrong(step.item_id)}
    )
    assert response.status_code == 200
    assert "Not quite." in response.content.decode()


def test_the_campaign_page_shows_who_is_in_training(tmp_path, annotator, researcher_client):
    campaign = training_campaign(tmp_path)
    member_add(campaign=campaign, annotator=annotator)
    answer_round(campaign, annotator, correct=0)
    page = researcher_client.get(reverse("annotation:campaign_detail", args=[campaign.pk]))
    assert "in training, round 2" in page.content.decode()
    answer_round(campaign, annotator, correct=4)
    page = researcher_client.get(reverse("annotation:campaign_detail", args=[campaign.pk]))
    assert "in training" not in page.content.decode()
