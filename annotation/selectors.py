"""Reads of the annotation app for pages, the API, the CLI and the critic.

What annotators may see is decided here (`item_view`): the sentence, the
relation and its guideline; never scores, log-probabilities, gold status or
other people's labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time
from time import monotonic
from typing import Any

from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from corpora.models import Relation

from .models import (
    Assignment,
    Campaign,
    CampaignAnnotator,
    Item,
    JoinLink,
    Judgment,
    JudgmentValue,
    label_used,
)


def campaign_list() -> QuerySet[Campaign]:
    return Campaign.objects.select_related("corpus").order_by("-created_at")


def campaigns_open_for_annotators(*, annotator=None) -> QuerySet[Campaign]:
    """Open campaigns; with `annotator`, only those they are a member of."""
    campaigns = Campaign.objects.filter(status=Campaign.Status.OPEN).exclude(
        name__startswith="imported:"
    )
    if annotator is not None:
        campaigns = campaigns.filter(annotators__annotator=annotator)
    return campaigns


@dataclass(frozen=True)
class CampaignProgress:
    items: int
    gold: int
    judgments_wanted: int
    judgments: int
    items_complete: int
    live_leases: int
    annotators: int
    flagged: int

    @property
    def percent(self) -> float:
        return 100.0 * self.judgments / self.judgments_wanted if self.judgments_wanted else 0.0


PROGRESS_CACHE_SECONDS = 3


def campaign_progress(*, campaign: Campaign, fresh: bool = False) -> CampaignProgress:
    """Campaign-wide counts. They scan the campaign's items, so they are cached for a few
    seconds: every annotator's page shows them after every answer."""
    key = f"annotation:progress:{campaign.pk}"
    if not fresh and (cached := cache.get(key)) is not None:
        return cached
    progress = _campaign_progress(campaign)
    cache.set(key, progress, PROGRESS_CACHE_SECONDS)
    return progress


def _campaign_progress(campaign: Campaign) -> CampaignProgress:
    items = Item.objects.filter(campaign=campaign, is_gold=False).aggregate(
        judgments=Sum("judgment_count"),
        complete=Count("pk", filter=Q(judgment_count__gte=campaign.judgments_per_item)),
    )
    judgments = Judgment.objects.filter(campaign=campaign)
    return CampaignProgress(
        items=campaign.item_count,
        gold=campaign.gold_count,
        judgments_wanted=campaign.judgments_wanted,
        judgments=items["judgments"] or 0,
        items_complete=items["complete"] or 0,
        live_leases=Assignment.objects.filter(
            campaign=campaign, status=Assignment.Status.LEASED, expires_at__gte=timezone.now()
        ).count(),
        annotators=CampaignAnnotator.objects.filter(campaign=campaign).count(),
        flagged=judgments.filter(flagged=True).count(),
    )


def campaign_stats_stale(*, campaign: Campaign) -> bool:
    """Whether a judgment was stored after the last aggregation (undo marks it stale too).

    Reads the newest judgment through the (campaign, id) index: one row at any size."""
    latest = (
        Judgment.objects.filter(campaign=campaign)
        .order_by("-pk")
        .values_list("created_at", flat=True)
        .first()
    )
    if latest is None:
        return False
    return campaign.aggregated_at is None or latest > campaign.aggregated_at


@dataclass(frozen=True)
class AnnotatorProgress:
    today: int
    in_campaign: int


def annotator_progress(
    *, campaign: Campaign, annotator, now: datetime | None = None
) -> AnnotatorProgress:
    now = timezone.localtime(now or timezone.now())
    midnight = timezone.make_aware(datetime.combine(now.date(), time.min), now.tzinfo)
    mine = Judgment.objects.filter(campaign=campaign, annotator=annotator)
    return AnnotatorProgress(
        today=mine.filter(created_at__gte=midnight).count(), in_campaign=mine.count()
    )


@dataclass(frozen=True)
class ItemView:
    """Everything an annotator is shown about one item, and nothing more."""

    assignment_id: int
    head: str
    relation: str
    tail: str
    sentence: str
    guideline: str
    expires_at: datetime


def item_view(*, assignment: Assignment) -> ItemView:
    shown = getattr(assignment, "shown", None)  # set by a claim that fetched the texts
    head, tail, relation_id = shown or Item.objects.values_list(
        "head__text", "tail", "relation_id"
    ).get(pk=assignment.item_id)
    relation = relation_by_id(relation_id)
    return ItemView(
        assignment_id=assignment.pk,
        head=head,
        relation=relation.name,
        tail=tail,
        sentence=relation.sentence(head, tail),
        guideline=relation.description,
        expires_at=assignment.expires_at,
    )


RELATION_CACHE_SECONDS = 30
_relations: dict[str, Any] = {"until": 0.0, "by_id": {}}


def relation_by_id(relation_id: int) -> Relation:
    """Relations change rarely and every item shows one: keep them in memory briefly."""
    now = monotonic()
    relation = _relations["by_id"].get(relation_id)
    if relation is None or _relations["until"] < now:
        _relations["by_id"] = {r.pk: r for r in Relation.objects.all()}
        _relations["until"] = now + RELATION_CACHE_SECONDS
        relation = _relations["by_id"][relation_id]
    return relation


def forget_relations() -> None:
    _relations["until"] = 0.0


RELATIONS_CACHE_SECONDS = 600


def relation_guidelines(*, campaign: Campaign) -> list[Relation]:
    """The relations a campaign asks about, with their guidelines, for the help panel.

    Finding them reads every item of the campaign (a million in a big one), and every
    judging page shows them: the ids are kept in the cache, under a key that changes when
    the campaign grows."""
    key = f"annotation:relations:{campaign.pk}:{campaign.item_count}:{campaign.gold_count}"
    ids = cache.get(key)
    if ids is None:
        ids = sorted(
            Item.objects.filter(campaign=campaign)
            .values_list("relation_id", flat=True)
            .distinct()
            .order_by()
        )
        cache.set(key, ids, RELATIONS_CACHE_SECONDS)
    return list(Relation.objects.filter(pk__in=ids))


def campaign_annotators(*, campaign: Campaign) -> QuerySet[CampaignAnnotator]:
    return (
        CampaignAnnotator.objects.filter(campaign=campaign)
        .select_related("annotator")
        .order_by("annotator__username")
    )


JUDGMENT_EXPORT_FIELDS = (
    "campaign",
    "item",
    "triple",
    "head",
    "relation",
    "tail",
    "annotator",
    "value",
    "flagged",
    "is_gold",
    "leased_at",
    "created_at",
    "seconds",
)


def judgment_rows(*, campaign: Campaign, chunk_size: int = 5000) -> Iterator[dict]:
    """One dict per judgment, in the order they were made, streamed in chunks."""
    rows = (
        Judgment.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list(
            "item_id",
            "item__triple_id",
            "item__head__text",
            "item__relation__name",
            "item__tail",
            "annotator__username",
            "value",
            "flagged",
            "item__is_gold",
            "assignment__leased_at",
            "created_at",
            "seconds",
        )
    )
    for row in rows.iterator(chunk_size=chunk_size):
        (item, triple, head, relation, tail, who, value, flagged, gold, leased, created, secs) = row
        yield {
            "campaign": campaign.name,
            "item": item,
            "triple": triple,
            "head": head,
            "relation": relation,
            "tail": tail,
            "annotator": who,
            "value": value,
            "flagged": flagged,
            "is_gold": gold,
            "leased_at": leased.isoformat() if leased else None,
            "created_at": created.isoformat(),
            "seconds": None if secs is None else round(secs, 3),
        }


AGGREGATE_EXPORT_FIELDS = (
    "campaign",
    "item",
    "triple",
    "head",
    "relation",
    "tail",
    "source",
    "judgments",
    "majority",
    "majority_confidence",
    "ds_label",
    "ds_confidence",
    "adjudicated_value",
    "adjudicated_by",
    "adjudicated_at",
    "label",
    "label_source",
    "label_confidence",
)


def aggregate_rows(*, campaign: Campaign, chunk_size: int = 5000) -> Iterator[dict]:
    """One dict per (non-gold) item with the crowd's labels as of the last aggregation, a
    researcher's adjudication if any, and the label used (`models.label_used`: the
    adjudicated value wins)."""
    rows = (
        Item.objects.filter(campaign=campaign, is_gold=False)
        .order_by("position")
        .values_list(
            "pk",
            "triple_id",
            "head__text",
            "relation__name",
            "tail",
            "source",
            "judgment_count",
            "majority",
            "majority_confidence",
            "ds_label",
            "ds_confidence",
            "adjudicated_value",
            "adjudicated_by__username",
            "adjudicated_at",
        )
    )
    for row in rows.iterator(chunk_size=chunk_size):
        (
            pk,
            triple,
            head,
            relation,
            tail,
            source,
            n,
            maj,
            maj_conf,
            ds,
            ds_conf,
            adj,
            adj_by,
            adj_at,
        ) = row
        used = label_used(
            adjudicated_value=adj,
            majority=maj,
            majority_confidence=maj_conf,
            ds_label=ds,
            ds_confidence=ds_conf,
        )
        yield {
            "campaign": campaign.name,
            "item": pk,
            "triple": triple,
            "head": head,
            "relation": relation,
            "tail": tail,
            "source": source,
            "judgments": n,
            "majority": maj,
            "majority_confidence": maj_conf,
            "ds_label": ds,
            "ds_confidence": ds_conf,
            "adjudicated_value": adj,
            "adjudicated_by": adj_by,
            "adjudicated_at": adj_at.isoformat() if adj_at else None,
            "label": used.label,
            "label_source": used.source,
            "label_confidence": used.confidence,
        }


def annotators_able(*, campaign: Campaign) -> int:
    """How many annotators can still reach the campaign's items: members not paused and
    not deactivated; researchers only if they have judged here (they may only be looking)."""
    researcher = Exists(
        Group.user_set.through.objects.filter(
            user_id=OuterRef("annotator_id"), group__name="researcher"
        )
    )
    judged = Exists(
        Judgment.objects.filter(campaign=campaign, annotator_id=OuterRef("annotator_id"))
    )
    return (
        CampaignAnnotator.objects.filter(campaign=campaign, paused=False, annotator__is_active=True)
        .filter((~researcher & Q(annotator__is_superuser=False)) | judged)
        .count()
    )


def join_capacity(*, campaign: Campaign, now: datetime | None = None) -> int | None:
    """How many more annotators the campaign's usable join links can still admit: None
    when one of them has no limit, 0 when there is none."""
    now = now or timezone.now()
    links = JoinLink.objects.filter(campaign=campaign, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    left = 0
    for max_uses, uses in links.values_list("max_uses", "uses"):
        if max_uses is None:
            return None
        left += max(0, max_uses - uses)
    return left


def k_warning(*, campaign: Campaign) -> str:
    """A warning when k exceeds the annotators who can still judge an item (members who
    can, and those the campaign's join links may still bring), or ""."""
    if campaign.status != Campaign.Status.OPEN:
        return ""
    able = annotators_able(campaign=campaign)
    k = campaign.judgments_per_item
    if able >= k:
        return ""
    coming = join_capacity(campaign=campaign)
    if coming is None or able + coming >= k:
        return ""
    who = "annotator" if able == 1 else "annotators"
    more = f" (and at most {coming} more through its join links)" if coming else ""
    return (
        f"k={k} but only {able} {who}{more} can still judge: items will never complete. "
        "Add annotators or a join link, reinstate paused ones, or lower k in a new campaign."
    )


def item_label_sql(alias: str = "i") -> str:
    """SQL for the label an item is used with, 1 (acceptable), 0 or NULL (none), from the
    item table under `alias`: `models.label_used` in SQL (the adjudicated value wins;
    "can't judge" adjudicated means no label; else Dawid-Skene, else majority)."""
    if not alias.isidentifier():
        raise ValueError(f"not an SQL alias: {alias!r}")
    a = alias
    crowd = f"COALESCE({a}.ds_label, {a}.majority)"
    return (
        f"(CASE WHEN {a}.adjudicated_value IS NOT NULL THEN "
        f"(CASE WHEN {a}.adjudicated_value > 0 THEN 1 "
        f"WHEN {a}.adjudicated_value = {JudgmentValue.CANT_JUDGE.value} THEN NULL ELSE 0 END) "
        f"WHEN {crowd} IS NULL THEN NULL WHEN {crowd} THEN 1 ELSE 0 END)"
    )
