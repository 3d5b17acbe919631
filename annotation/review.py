"""Reads for a campaign's review page and API: its items with every individual answer,
the crowd's label, the critic's score and the adjudication, filtered in SQL.

Filters (one at a time, plus adjudicated or not):

- ``disagreement``: answers on both sides (acceptable, > 0, and not, -1 or -2);
- ``low_agreement``: the majority's share of the votes below ``agreement_below``;
- ``flagged``: someone flagged the item as offensive;
- ``gold_missed``: gold items someone answered wrongly;
- ``critic_disagrees``: a confident critic score (>= ``critic_high`` or <= ``critic_low``)
  against the crowd's label (Dawid-Skene where it exists, majority otherwise).

Filters on answers probe each item's judgments through their (item, annotator) unique
index ("flagged" reads the few flagged judgments through a partial index); the critic's
is a semi-join on the confident scores of the score set in force. Items come in id order:
a page stops once it has its rows, and a count stops at `core.pagination.COUNT_CAP`
(bench/review_filters.py measures them at 100,000 items and a million judgments).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce

from core.limits import bounds_check, choice_check
from corpora.models import Corpus, TripleScore

from .errors import AnnotationError
from .models import Campaign, CampaignAnnotator, Item, Judgment, JudgmentValue, LabelUsed

FILTERS: dict[str, str] = {
    "": "All items",
    "disagreement": "Disagreement (answers on both sides)",
    "low_agreement": "Low agreement",
    "flagged": "Flagged offensive",
    "gold_missed": "Gold missed",
    "critic_disagrees": "Critic and crowd disagree",
}
ADJUDICATED: dict[str, str] = {"": "Adjudicated or not", "yes": "Adjudicated", "no": "Not yet"}
REVIEW_LIMITS = {
    "agreement_below": (0.0, 1.0),
    "critic_high": (0.0, 1.0),
    "critic_low": (0.0, 1.0),
}
PAGE_SIZE = 25
LABEL_SOURCES = {"adjudicated": "adjudicated", "dawid_skene": "Dawid-Skene", "majority": "majority"}

ACCEPTING = {"value__gt": 0}
REJECTING = {"value__in": (JudgmentValue.FARFETCHED, JudgmentValue.INVALID)}


@dataclass(frozen=True)
class ReviewFilter:
    kind: str = ""
    adjudicated: str = ""
    agreement_below: float = 0.7
    critic_high: float = 0.8
    critic_low: float = 0.2

    def check(self) -> None:
        """AnnotationError naming the first setting off its choices or bounds."""
        choice_check(self.kind, FILTERS, field="filter", error=AnnotationError)
        choice_check(self.adjudicated, ADJUDICATED, field="adjudicated", error=AnnotationError)
        bounds_check(
            REVIEW_LIMITS,
            error=AnnotationError,
            agreement_below=self.agreement_below,
            critic_high=self.critic_high,
            critic_low=self.critic_low,
        )
        if self.critic_low >= self.critic_high:
            raise AnnotationError(
                "The critic's low score must be below its high score.", field="critic_low"
            )

    @property
    def query(self) -> dict[str, str]:
        """The settings that differ from the defaults, for links (a page, a shared URL)."""
        defaults = ReviewFilter()
        names = {"kind": "filter"}
        return {
            names.get(name, name): str(value)
            for name, value in vars(self).items()
            if value != getattr(defaults, name)
        }


def _answers(**conditions) -> Exists:
    return Exists(Judgment.objects.filter(item_id=OuterRef("pk"), **conditions))


def _score_set(campaign: Campaign) -> int | None:
    return Corpus.score_set_in_force(campaign.corpus_id)


def review_items(*, campaign: Campaign, flt: ReviewFilter | None = None) -> QuerySet[Item]:
    """The campaign's items (gold too) that pass the filter, in id order, with their texts
    and who adjudicated them."""
    flt = flt or ReviewFilter()
    flt.check()
    items = Item.objects.filter(campaign=campaign)
    if flt.adjudicated:
        items = items.filter(adjudicated_value__isnull=flt.adjudicated == "no")
    if flt.kind == "disagreement":
        # Rejections are the rarer side: probed first, most items stop there.
        items = items.filter(_answers(**REJECTING), _answers(**ACCEPTING))
    elif flt.kind == "low_agreement":
        items = items.filter(majority_confidence__lt=flt.agreement_below)
    elif flt.kind == "flagged":
        items = items.filter(_answers(campaign=campaign, flagged=True))
    elif flt.kind == "gold_missed":
        items = items.filter(
            Q(is_gold=True)
            & (
                (Q(gold_acceptable=True) & _answers(**REJECTING))
                | (Q(gold_acceptable=False) & _answers(**ACCEPTING))
            )
        )
    elif flt.kind == "critic_disagrees":
        score_set = _score_set(campaign)
        if score_set is None:
            return items.none()
        scores = TripleScore.objects.filter(score_set_id=score_set)
        # Semi-joins on the confident scores (the (score set, score) index), not a score
        # looked up per item: counting 10,000 matches of 100,000 items takes a tenth.
        items = items.annotate(
            crowd=Coalesce("ds_label", "majority", output_field=BooleanField())
        ).filter(
            Q(
                crowd=True,
                triple_id__in=scores.filter(score__lte=flt.critic_low).values("triple_id"),
            )
            | Q(
                crowd=False,
                triple_id__in=scores.filter(score__gte=flt.critic_high).values("triple_id"),
            )
        )
    return items.select_related("head", "relation", "adjudicated_by").order_by("pk")


@dataclass(frozen=True)
class Answer:
    annotator: str
    value: int
    flagged: bool
    created_at: datetime
    seconds: float | None
    excluded: bool  # a paused annotator's: left out of the crowd's label

    @property
    def value_label(self) -> str:
        return JudgmentValue(self.value).label

    @property
    def side(self) -> str:
        """ "accept", "reject" or "none" (can't judge), for the page's colours."""
        if self.value == JudgmentValue.CANT_JUDGE:
            return "none"
        return "accept" if self.value > 0 else "reject"


@dataclass(frozen=True)
class ReviewRow:
    item: Item
    sentence: str
    critic_score: float | None
    answers: list[Answer] = field(default_factory=list)

    @property
    def label_used(self) -> LabelUsed:
        return self.item.label_used

    @property
    def label_source_text(self) -> str:
        return LABEL_SOURCES.get(self.label_used.source, "")

    @property
    def gold_missed(self) -> bool:
        if not self.item.is_gold:
            return False
        return any(
            a.side != "none" and (a.side == "accept") != self.item.gold_acceptable
            for a in self.answers
        )


def review_rows(*, campaign: Campaign, items: list[Item]) -> list[ReviewRow]:
    """A page of items with their answers (who, when, how long, what, flagged) and the
    critic's score of their triple in the score set in force: three queries a page."""
    ids = [item.pk for item in items]
    excluded = set(
        CampaignAnnotator.objects.filter(
            campaign=campaign, paused=True, reinstated=False
        ).values_list("annotator_id", flat=True)
    )
    answers: dict[int, list[Answer]] = defaultdict(list)
    rows = (
        Judgment.objects.filter(item_id__in=ids)
        .order_by("item_id", "created_at", "pk")
        .values_list(
            "item_id",
            "annotator_id",
            "annotator__username",
            "value",
            "flagged",
            "created_at",
            "seconds",
        )
    )
    for item_id, who, username, value, flagged, created, seconds in rows:
        answers[item_id].append(
            Answer(
                annotator=username,
                value=value,
                flagged=flagged,
                created_at=created,
                seconds=seconds,
                excluded=who in excluded,
            )
        )
    scores: dict[int, float] = {}
    score_set = _score_set(campaign)
    triple_ids = [item.triple_id for item in items if item.triple_id is not None]
    if score_set is not None and triple_ids:
        scores = dict(
            TripleScore.objects.filter(
                score_set_id=score_set, triple_id__in=triple_ids
            ).values_list("triple_id", "score")
        )
    return [
        ReviewRow(
            item=item,
            sentence=item.relation.sentence(item.head.text, item.tail),
            critic_score=scores.get(item.triple_id),
            answers=answers.get(item.pk, []),
        )
        for item in items
    ]


def review_row(*, item: Item) -> ReviewRow:
    """One item's row, as the review page shows it (after an adjudication)."""
    item = Item.objects.select_related("campaign", "head", "relation", "adjudicated_by").get(
        pk=item.pk
    )
    return review_rows(campaign=item.campaign, items=[item])[0]


def campaign_has_scores(*, campaign: Campaign) -> bool:
    return _score_set(campaign) is not None
