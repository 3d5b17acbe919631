"""Training and qualification: a campaign with `training_size` > 0 starts each newcomer with
a round of gold items, answered before any real item and shown the expected answer and its
reason after each answer. A round at or above `qualification_threshold` qualifies them
(`qualified_at`); below it, another round follows until `training_tries` rounds are used,
and then they are paused with the reason.

Training answers are `TrainingAnswer` rows: never judgments, never leases. The items of a
round are picked deterministically from the campaign's gold (acceptable and not in turn);
what an annotator trained on is never handed to them as gold later (see `leasing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..errors import AnnotationError, AnnotatorPaused, CampaignClosed, TrainingRequired
from ..models import Campaign, CampaignAnnotator, Item, JudgmentValue, TrainingAnswer
from ..selectors import relation_by_id
from .standing import _standing, annotator_pause, pause_message

EXPECTED = {
    True: "Acceptable: always/often or sometimes/likely (keys 1 or 2).",
    False: "Not acceptable: farfetched/never or invalid (keys 3 or 4).",
}


@dataclass(frozen=True)
class TrainingItem:
    """A training item as the annotator sees it (no gold status before they answer)."""

    item_id: int
    round: int  # 1-based
    number: int  # 1-based, within the round
    size: int
    head: str
    relation: str
    tail: str
    sentence: str
    guideline: str


@dataclass(frozen=True)
class TrainingFeedback:
    """What the annotator is shown after a training answer."""

    sentence: str
    value: int
    answer: str
    correct: bool
    expected: str
    reason: str
    # After the round's last answer: "qualified", "again" (another round) or "paused".
    outcome: str = ""
    message: str = ""


def training_items(*, campaign: Campaign, round: int) -> list[int]:
    """The gold item ids of a round (0-based): acceptable and not in turn, in position
    order, each round the next slice (wrapping round when the gold runs out)."""
    gold = list(
        Item.objects.filter(campaign=campaign, is_gold=True)
        .order_by("position", "pk")
        .values_list("pk", "gold_acceptable")
    )
    good = [pk for pk, ok in gold if ok]
    bad = [pk for pk, ok in gold if not ok]
    mixed: list[int] = []
    for i in range(max(len(good), len(bad))):
        mixed.extend(pool[i] for pool in (good, bad) if i < len(pool))
    if not mixed:
        return []
    size = min(campaign.training_size, len(mixed))
    start = round * size
    return [mixed[(start + i) % len(mixed)] for i in range(size)]


def _needs_training(campaign: Campaign, standing: CampaignAnnotator) -> bool:
    return bool(campaign.training_size) and standing.qualified_at is None


def training_guard(*, campaign: Campaign, annotator) -> None:
    """TrainingRequired unless the annotator has passed the campaign's training."""
    if not campaign.training_size:
        return
    qualified = (
        CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator)
        .values_list("qualified_at", flat=True)
        .first()
    )
    if qualified is None and training_items(campaign=campaign, round=0):
        raise TrainingRequired(
            "This campaign starts with a short training: answer it on the judging page "
            "first, real items follow once you pass."
        )


def training_next(*, campaign: Campaign, annotator) -> TrainingItem | None:
    """The training item this annotator should answer now; None when they need none
    (no training in this campaign, or passed)."""
    if not campaign.training_size:
        return None
    standing = _standing(campaign, annotator)
    if standing.paused:
        raise AnnotatorPaused(pause_message(standing.pause_reason))
    if not _needs_training(campaign, standing):
        return None
    items = training_items(campaign=campaign, round=standing.training_round)
    if not items:
        return None  # no gold to train on
    answered = set(
        TrainingAnswer.objects.filter(
            campaign=campaign, annotator=annotator, round=standing.training_round
        ).values_list("item_id", flat=True)
    )
    for number, item_id in enumerate(items, start=1):
        if item_id not in answered:
            return _training_item(item_id, standing.training_round, number, len(items))
    return None


def _training_item(item_id: int, round: int, number: int, size: int) -> TrainingItem:
    head, tail, relation_id = Item.objects.values_list("head__text", "tail", "relation_id").get(
        pk=item_id
    )
    relation = relation_by_id(relation_id)
    return TrainingItem(
        item_id=item_id,
        round=round + 1,
        number=number,
        size=size,
        head=head,
        relation=relation.name,
        tail=tail,
        sentence=relation.sentence(head, tail),
        guideline=relation.description,
    )


def training_answer(
    *, campaign: Campaign, annotator, item_id: int, value: int, now: datetime | None = None
) -> TrainingFeedback:
    """Record a training answer and say whether it was right and why; after the round's
    last answer, qualify the annotator, start another round, or pause them."""
    now = now or timezone.now()
    if value not in JudgmentValue.values:
        raise AnnotationError("Choose one of the answers (keys 1, 2, 3, 4 or 0).")
    if campaign.status != Campaign.Status.OPEN:
        raise CampaignClosed(f"Campaign '{campaign.name}' is closed.")
    _standing(campaign, annotator)
    with transaction.atomic():
        standing = CampaignAnnotator.objects.select_for_update().get(
            campaign=campaign, annotator=annotator
        )
        if standing.paused:
            raise AnnotatorPaused(pause_message(standing.pause_reason))
        if not _needs_training(campaign, standing):
            raise AnnotationError("Your training is done: real items follow.")
        items = training_items(campaign=campaign, round=standing.training_round)
        if item_id not in items:
            raise AnnotationError("That training item is not part of your current round.")
        item = Item.objects.get(pk=item_id)
        correct = value != JudgmentValue.CANT_JUDGE and (value > 0) == item.gold_acceptable
        try:
            with transaction.atomic():
                TrainingAnswer.objects.create(
                    campaign=campaign,
                    annotator=annotator,
                    item=item,
                    round=standing.training_round,
                    value=value,
                    correct=correct,
                    created_at=now,
                )
        except IntegrityError:
            raise AnnotationError("You answered that training item already.") from None
        standing.training_answered += 1
        standing.training_correct += int(correct)
        fields = ["training_answered", "training_correct"]
        outcome = message = ""
        if standing.training_answered >= len(items):
            outcome, message = _end_of_round(campaign, standing, now)
            fields += ["training_round", "qualified_at"]
        standing.save(update_fields=fields)
        if outcome == "paused":
            annotator_pause(campaign=campaign, annotator=annotator, reason=message)
    relation = relation_by_id(item.relation_id)
    return TrainingFeedback(
        sentence=relation.sentence(item.head.text, item.tail),
        value=value,
        answer=JudgmentValue(value).label,
        correct=correct,
        expected=EXPECTED[bool(item.gold_acceptable)],
        reason=item.gold_reason,
        outcome=outcome,
        message=message if outcome != "paused" else pause_message(message),
    )


def _end_of_round(campaign: Campaign, standing: CampaignAnnotator, now: datetime) -> tuple:
    right, asked = standing.training_correct, standing.training_answered
    if right / asked >= campaign.qualification_threshold:
        standing.qualified_at = now
        return (
            "qualified",
            f"You passed the training ({right} of {asked} right): real items follow.",
        )
    if standing.training_round + 1 < campaign.training_tries:
        standing.training_round += 1
        standing.training_answered = standing.training_correct = 0
        return "again", (
            f"{right} of {asked} right, short of the {campaign.qualification_threshold:.0%} "
            "needed: here is another round of training."
        )
    return "paused", f"did not pass training ({right} of {asked} right)"
