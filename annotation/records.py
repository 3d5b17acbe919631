"""Reads for the researchers' annotators page: each annotator's record across campaigns
(memberships, judgments, active time, gold record, agreement, flags, pauses, platform id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from .models import CampaignAnnotator, Judgment


@dataclass(frozen=True)
class AnnotatorRecord:
    user: Any
    platform: str
    worker_id: str
    campaigns: list[dict]
    judgments: int
    active_seconds: float
    gold_answered: int
    gold_correct: int
    agreement: float | None
    flagged: int

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None

    @property
    def paused_in(self) -> list[dict]:
        return [row for row in self.campaigns if row["paused"]]


def annotator_users() -> QuerySet:
    """Annotator-role users and people who joined by link, newest first."""
    from django.contrib.auth import get_user_model

    from core.roles import ANNOTATOR

    return (
        get_user_model()
        .objects.filter(Q(groups__name=ANNOTATOR) | Q(crowd_worker__isnull=False))
        .distinct()
        .order_by("-date_joined", "-pk")
    )


def annotator_records(*, users: list) -> list[AnnotatorRecord]:
    """The record of each of `users` (a page of them): memberships, judgments, active time
    (the sum of their judgments' seconds), gold record, agreement with others (from each
    campaign's last aggregation, weighted by judgments), flags, pauses, platform id."""
    from .models import CrowdWorker

    ids = [user.pk for user in users]
    work = {
        row["annotator_id"]: row
        for row in Judgment.objects.filter(annotator_id__in=ids)
        .values("annotator_id")
        .annotate(
            n=Count("pk"), seconds=Sum("seconds"), flagged=Count("pk", filter=Q(flagged=True))
        )
        .order_by()
    }
    workers = {w.annotator_id: w for w in CrowdWorker.objects.filter(annotator_id__in=ids)}
    memberships: dict[int, list] = {pk: [] for pk in ids}
    standings = (
        CampaignAnnotator.objects.filter(annotator_id__in=ids)
        .select_related("campaign")
        .only(
            "annotator_id",
            "paused",
            "pause_reason",
            "gold_answered",
            "gold_correct",
            "completions",
            "campaign__id",
            "campaign__name",
            "campaign__status",
            "campaign__stats",
        )
        .order_by("campaign__name")
    )
    for standing in standings:
        memberships[standing.annotator_id].append(standing)
    records = []
    for user in users:
        rows, weighted, weight = [], 0.0, 0
        for standing in memberships[user.pk]:
            found = next(
                (
                    row
                    for row in (standing.campaign.stats or {}).get("annotators", [])
                    if row.get("id") == user.pk
                ),
                {},
            )
            if found.get("agreement") is not None and found.get("judgments"):
                weighted += found["agreement"] * found["judgments"]
                weight += found["judgments"]
            rows.append(
                {
                    "campaign": standing.campaign,
                    "paused": standing.paused,
                    "pause_reason": standing.pause_reason,
                    "gold_answered": standing.gold_answered,
                    "gold_correct": standing.gold_correct,
                    "completions": standing.completions,
                }
            )
        done = work.get(user.pk, {})
        worker = workers.get(user.pk)
        records.append(
            AnnotatorRecord(
                user=user,
                platform=worker.platform if worker else "",
                worker_id=worker.worker_id if worker else "",
                campaigns=rows,
                judgments=done.get("n", 0),
                active_seconds=done.get("seconds") or 0.0,
                gold_answered=sum(r["gold_answered"] for r in rows),
                gold_correct=sum(r["gold_correct"] for r in rows),
                agreement=weighted / weight if weight else None,
                flagged=done.get("flagged", 0),
            )
        )
    return records
