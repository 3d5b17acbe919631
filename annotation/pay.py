"""The pay sheet of a campaign: one row per member (platform ids, judgments, active time,
gold accuracy, status, completion codes issued), streamed as CSV in three shapes:

- `full`: everything, for the researcher's records;
- `prolific`: what Prolific's bulk approve takes (one participant id a line) or, with a
  bonus per judgment, its bulk bonus (`participant_id,amount` a line);
- `mturk`: MTurk's batch results shape for bulk approve/reject (HITId, AssignmentId,
  WorkerId, Approve, Reject): "x" under Approve for an active worker with a completion,
  the reason under Reject for a paused or deactivated one.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Sum

from core.spreadsheets import csv_safe

from .models import Campaign, CampaignAnnotator, Judgment

SHAPES = ("full", "prolific", "mturk")
FULL_FIELDS = (
    "annotator",
    "platform",
    "worker_id",
    "study_id",
    "session_id",
    "assignment_id",
    "hit_id",
    "judgments",
    "active_minutes",
    "gold_answered",
    "gold_accuracy",
    "status",
    "pause_reason",
    "completions",
    "completion_code",
    "joined_at",
)
MTURK_FIELDS = ("HITId", "AssignmentId", "WorkerId", "Approve", "Reject")


@dataclass(frozen=True)
class PayRow:
    annotator: str
    platform: str
    worker_id: str
    ids: dict
    judgments: int
    active_minutes: float
    gold_answered: int
    gold_accuracy: float | None
    status: str
    pause_reason: str
    completions: int
    completion_code: str
    joined_at: str


def pay_rows(*, campaign: Campaign, chunk_size: int = 2000) -> Iterator[PayRow]:
    """One row per member of `campaign`, in the order they joined."""
    work = {
        row["annotator_id"]: row
        for row in Judgment.objects.filter(campaign=campaign)
        .values("annotator_id")
        .annotate(n=Count("pk"), seconds=Sum("seconds"))
        .order_by()
    }
    members = (
        CampaignAnnotator.objects.filter(campaign=campaign)
        .select_related("annotator", "annotator__crowd_worker", "joined_via")
        .order_by("joined_at", "pk")
    )
    for standing in members.iterator(chunk_size=chunk_size):
        user = standing.annotator
        worker = getattr(user, "crowd_worker", None)
        done = work.get(user.pk, {})
        if not user.is_active:
            status = "deactivated"
        elif standing.paused:
            status = "paused"
        else:
            status = "active"
        yield PayRow(
            annotator=user.get_username(),
            platform=worker.platform if worker else "",
            worker_id=worker.worker_id if worker else "",
            ids=standing.platform_ids or {},
            judgments=done.get("n", 0),
            active_minutes=round((done.get("seconds") or 0.0) / 60.0, 2),
            gold_answered=standing.gold_answered,
            gold_accuracy=standing.gold_accuracy,
            status=status,
            pause_reason=standing.pause_reason,
            completions=standing.completions,
            completion_code=standing.joined_via.completion_code if standing.joined_via else "",
            joined_at=standing.joined_at.isoformat(),
        )


class _Line:
    """A file-like object whose write returns the CSV line, for streaming."""

    def write(self, value: str) -> str:
        return value


def _full(rows: Iterator[PayRow]) -> Iterator[list]:
    yield list(FULL_FIELDS)
    for r in rows:
        accuracy = "" if r.gold_accuracy is None else f"{r.gold_accuracy:.3f}"
        yield [
            r.annotator,
            r.platform,
            r.worker_id,
            r.ids.get("study_id", ""),
            r.ids.get("session_id", ""),
            r.ids.get("assignment_id", ""),
            r.ids.get("hit_id", ""),
            r.judgments,
            r.active_minutes,
            r.gold_answered,
            accuracy,
            r.status,
            r.pause_reason,
            r.completions,
            r.completion_code,
            r.joined_at,
        ]


def _prolific(rows: Iterator[PayRow], bonus: Decimal | None) -> Iterator[list]:
    for r in rows:
        if r.platform != "prolific" or r.status != "active":
            continue
        if bonus is None:
            if r.completions:
                yield [r.worker_id]
        elif r.judgments:
            amount = (bonus * r.judgments).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            yield [r.worker_id, f"{amount:.2f}"]


def _mturk(rows: Iterator[PayRow]) -> Iterator[list]:
    yield list(MTURK_FIELDS)
    for r in rows:
        if r.platform != "mturk":
            continue
        approve = "x" if r.status == "active" and r.completions else ""
        if r.status == "paused":
            reject = r.pause_reason or "Did not meet the study's quality checks."
        elif r.status == "deactivated":
            reject = "Removed from the study by the researchers."
        else:
            reject = ""
        yield [
            r.ids.get("hit_id", ""),
            r.ids.get("assignment_id", ""),
            r.worker_id,
            approve,
            reject,
        ]


def pay_csv_chunks(
    *, campaign: Campaign, shape: str = "full", bonus_per_judgment: Decimal | None = None
) -> Iterator[str]:
    """The pay sheet as CSV lines (every text cell defused for spreadsheets)."""
    rows = pay_rows(campaign=campaign)
    if shape == "prolific":
        table = _prolific(rows, bonus_per_judgment)
    elif shape == "mturk":
        table = _mturk(rows)
    else:
        table = _full(rows)
    writer = csv.writer(_Line())
    for row in table:
        yield writer.writerow([csv_safe(c) if isinstance(c, str) else c for c in row])
