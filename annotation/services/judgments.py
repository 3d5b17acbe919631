"""Judgments: submit one (exactly once: a repeated submit stores one judgment, an item never
gets more than k) and undo the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core import db

from ..errors import AnnotationError, AnnotatorPaused, CampaignClosed, LeaseRefused, NothingToUndo
from ..models import Assignment, Campaign, CampaignAnnotator, Item, Judgment, JudgmentValue
from .honesty import honesty_check, honesty_due
from .leasing import Standing, _locked_assignment
from .membership import member_required
from .standing import _standing, annotator_pause


@dataclass(frozen=True)
class SubmitResult:
    judgment: Judgment
    created: bool
    paused: bool = False
    is_gold: bool = False
    # From the one-statement path: the annotator's standing right after the submit, for
    # assignment_next(standing=...) (None: let it look).
    standing: Standing | None = None
    reinstated: bool | None = None  # likewise (None: not read)


def _score_gold(campaign: Campaign, annotator, item: Item, value: int, sign: int) -> bool:
    """Add (sign=1) or take back (sign=-1) a gold answer; True if the annotator is now paused."""
    if not item.is_gold or value == JudgmentValue.CANT_JUDGE:
        return False
    correct = int((value > 0) == item.gold_acceptable)
    _standing(campaign, annotator)
    CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator).update(
        gold_answered=F("gold_answered") + sign, gold_correct=F("gold_correct") + sign * correct
    )
    standing = CampaignAnnotator.objects.get(campaign=campaign, annotator=annotator)
    if (
        sign > 0
        and not standing.reinstated
        and not standing.paused
        and standing.gold_answered >= campaign.gold_min_answers
        and standing.gold_accuracy < campaign.gold_threshold
    ):
        annotator_pause(
            campaign=campaign,
            annotator=annotator,
            reason=f"gold accuracy {standing.gold_accuracy:.0%} "
            f"({standing.gold_correct} of {standing.gold_answered} right), "
            f"below {campaign.gold_threshold:.0%}",
        )
        return True
    return False


def judgment_submit(
    *,
    assignment_id: int,
    annotator,
    value: int,
    flagged: bool = False,
    campaign: Campaign | None = None,
    now: datetime | None = None,
) -> SubmitResult:
    """Store the annotator's judgment of a leased item, exactly once.

    With `campaign`, an assignment of another campaign is not found."""
    now = now or timezone.now()
    if value not in JudgmentValue.values:
        raise AnnotationError(
            f"A judgment is one of {', '.join(map(str, JudgmentValue.values))}; got {value!r}."
        )
    if connection.vendor == "postgresql":
        stored = _submit_on_live_lease(assignment_id, annotator, value, flagged, campaign, now)
        if stored is not None:
            if (
                not stored.paused
                and honesty_due(judgment_id=stored.judgment.pk, is_gold=stored.is_gold)
                and honesty_check(
                    campaign=stored.judgment.campaign,
                    annotator=annotator,
                    reinstated=stored.reinstated,
                )
            ):
                return SubmitResult(judgment=stored.judgment, created=True, paused=True)
            return stored
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id, annotator, campaign)
        if assignment.status == Assignment.Status.SUBMITTED:
            existing = Judgment.objects.get(item_id=assignment.item_id, annotator=annotator)
            return SubmitResult(judgment=existing, created=False)
        item, campaign = assignment.item, assignment.campaign
        if campaign.status != Campaign.Status.OPEN:
            raise CampaignClosed(
                f"Campaign '{campaign.name}' is closed: your answer was not stored."
            )
        if assignment.status == Assignment.Status.LEASED:
            # The lease still holds its slot (even if its time ran out and no
            # one reaped it yet): the slot becomes the judgment's.
            Item.objects.filter(pk=item.pk).update(judgment_count=F("judgment_count") + 1)
        elif item.is_gold:
            Item.objects.filter(pk=item.pk).update(judgment_count=F("judgment_count") + 1)
        else:
            # The lease expired or was skipped: accept only if a slot is still free.
            taken = Item.objects.filter(pk=item.pk, slots_free__gt=0).update(
                slots_free=F("slots_free") - 1, judgment_count=F("judgment_count") + 1
            )
            if not taken:
                raise LeaseRefused(
                    "Your time on this triple ran out and other people have since judged it "
                    "as many times as needed, so this answer was not stored."
                )
        if assignment.annotator_paused:
            raise AnnotatorPaused("Your judgments in this campaign are paused.")
        judgment = Judgment.objects.create(
            campaign=campaign,
            item=item,
            annotator=annotator,
            assignment=assignment,
            value=value,
            flagged=flagged,
            created_at=now,
            seconds=max(0.0, (now - assignment.leased_at).total_seconds()),
        )
        assignment.status = Assignment.Status.SUBMITTED
        assignment.save(update_fields=["status"])
        paused = _score_gold(campaign, annotator, item, value, +1)
        if not paused and honesty_due(judgment_id=judgment.pk, is_gold=item.is_gold):
            paused = bool(honesty_check(campaign=campaign, annotator=annotator))
    return SubmitResult(judgment=judgment, created=True, paused=paused)


# The common submit in one statement: an item (gold included) of an open campaign, leased
# to an annotator who is not paused. Anything else (a repeat, an expired or skipped lease,
# a closed campaign, gold without a standing row) matches no row here and takes
# judgment_submit's general path. A gold answer is scored in the same statement (`scored`);
# whether it pauses the annotator is decided from what that returns.
_SUBMIT_POSTGRES = """
WITH lease AS (
    SELECT a.id, a.item_id, a.campaign_id, a.leased_at, i.is_gold, i.gold_acceptable
    FROM {assignment} a JOIN {item} i ON i.id = a.item_id
    WHERE a.id = %(assignment)s AND a.annotator_id = %(annotator)s AND a.status = 'leased'
      {in_campaign}
      AND EXISTS (SELECT 1 FROM {campaign} o WHERE o.id = a.campaign_id AND o.status = 'open')
      AND NOT EXISTS (
          SELECT 1 FROM {standing} s
          WHERE s.campaign_id = a.campaign_id AND s.annotator_id = a.annotator_id AND s.paused
      )
      AND (NOT i.is_gold OR EXISTS (
          SELECT 1 FROM {standing} s
          WHERE s.campaign_id = a.campaign_id AND s.annotator_id = a.annotator_id
      ))
    FOR UPDATE OF a
), counted AS (
    UPDATE {item} SET judgment_count = {item}.judgment_count + 1
    FROM lease WHERE {item}.id = lease.item_id
), judged AS (
    INSERT INTO {judgment}
        (campaign_id, item_id, annotator_id, assignment_id, value, flagged, created_at, seconds)
    SELECT campaign_id, item_id, %(annotator)s, id, %(value)s, %(flagged)s, %(now)s,
           GREATEST(0, EXTRACT(EPOCH FROM %(now)s - leased_at))
    FROM lease
    RETURNING id, item_id, assignment_id, seconds
), submitted AS (
    UPDATE {assignment} SET status = 'submitted' FROM lease WHERE {assignment}.id = lease.id
), scored AS (
    UPDATE {standing} SET
        gold_answered = {standing}.gold_answered + 1,
        gold_correct = {standing}.gold_correct
            + CASE WHEN (%(value)s > 0) = lease.gold_acceptable THEN 1 ELSE 0 END
    FROM lease
    WHERE lease.is_gold AND %(value)s <> %(cant_judge)s
      AND {standing}.campaign_id = lease.campaign_id
      AND {standing}.annotator_id = %(annotator)s
    RETURNING {standing}.gold_answered, {standing}.gold_correct, {standing}.reinstated
)
SELECT judged.id, judged.item_id, judged.seconds, (SELECT is_gold FROM lease),
       (SELECT gold_answered FROM scored), (SELECT gold_correct FROM scored),
       (SELECT reinstated FROM scored),
       s.id IS NOT NULL, s.reinstated, s.claim_position, s.qualified_at IS NOT NULL, (
           SELECT a.id FROM {assignment} a, lease
           WHERE a.campaign_id = lease.campaign_id AND a.annotator_id = %(annotator)s
             AND a.status = 'leased' AND a.expires_at >= %(now)s AND a.id <> lease.id
           ORDER BY a.leased_at DESC, a.id DESC
           LIMIT 1
       ),
       {campaign_columns}
FROM judged JOIN {campaign} c ON c.id = (SELECT campaign_id FROM lease)
LEFT JOIN {standing} s ON s.campaign_id = c.id AND s.annotator_id = %(annotator)s
"""
# What the statement also returns is the standing a following claim needs (claim cursor,
# qualified, another live lease), so a combined submit+next asks for it only once.
# The campaign comes back with the judgment (a combined submit+next needs it).
_SUBMIT_CAMPAIGN_FIELDS = [
    f.attname for f in Campaign._meta.concrete_fields if f.name not in ("stats", "instructions")
]


_submit_sql: dict[bool, str] = {}


def _submit_statement(in_campaign: bool) -> str:
    """The statement, composed once per process (with and without the campaign check)."""
    sql = _submit_sql.get(in_campaign)
    if sql is None:
        sql = _submit_sql[in_campaign] = _SUBMIT_POSTGRES.format(
            assignment=Assignment._meta.db_table,
            item=Item._meta.db_table,
            standing=CampaignAnnotator._meta.db_table,
            judgment=Judgment._meta.db_table,
            campaign=Campaign._meta.db_table,
            campaign_columns=", ".join(
                f"c.{connection.ops.quote_name(name)}" for name in _SUBMIT_CAMPAIGN_FIELDS
            ),
            in_campaign="AND a.campaign_id = %(campaign)s" if in_campaign else "",
        )
    return sql


def _submit_on_live_lease(
    assignment_id: int, annotator, value: int, flagged: bool, campaign, now: datetime
) -> SubmitResult | None:
    params = {
        "assignment": assignment_id,
        "annotator": annotator.pk,
        "value": value,
        "flagged": flagged,
        "now": now,
        "cant_judge": int(JudgmentValue.CANT_JUDGE),
    }
    if campaign is not None:
        params["campaign"] = campaign.pk
    row = db.fetchone(_submit_statement(campaign is not None), params)
    if row is None:
        return None
    judgment_id, item_id, seconds, is_gold, answered, correct, reinstated, *rest = row
    member, standing_reinstated, claim_position, qualified, live_id, *values = rest
    campaign = Campaign.from_db(connection.alias, _SUBMIT_CAMPAIGN_FIELDS, values)
    judgment = Judgment(
        pk=judgment_id,
        campaign=campaign,
        item_id=item_id,
        annotator=annotator,
        assignment_id=assignment_id,
        value=value,
        flagged=flagged,
        created_at=now,
        seconds=seconds,
    )
    paused = False
    if (
        answered is not None
        and not reinstated
        and answered >= campaign.gold_min_answers
        and correct / answered < campaign.gold_threshold
    ):
        annotator_pause(
            campaign=campaign,
            annotator=annotator,
            reason=f"gold accuracy {correct / answered:.0%} "
            f"({correct} of {answered} right), below {campaign.gold_threshold:.0%}",
        )
        paused = True
    return SubmitResult(
        judgment=judgment,
        created=True,
        paused=paused,
        is_gold=bool(is_gold),
        standing=Standing(False, claim_position, live_id, qualified) if member else None,
        reinstated=bool(standing_reinstated) if member else None,
    )


def judgment_undo(*, campaign: Campaign, annotator, now: datetime | None = None) -> Assignment:
    """Take back the annotator's last judgment while its item is still open; the item
    is leased to them again so they can answer anew. The returned lease carries the
    answer taken back (`undone_value`, `undone_flagged`), for the form to show it again."""
    now = now or timezone.now()
    member_required(campaign=campaign, annotator=annotator)
    with transaction.atomic():
        status = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
        if status != Campaign.Status.OPEN:
            raise CampaignClosed(
                f"Campaign '{campaign.name}' is closed: its judgments can no longer be undone."
            )
        judgment = (
            Judgment.objects.select_for_update(of=("self",))
            .select_related("item", "assignment")
            .filter(campaign=campaign, annotator=annotator, assignment__isnull=False)
            .order_by("-created_at", "-pk")
            .first()
        )
        if judgment is None:
            raise NothingToUndo("There is no judgment of yours to undo in this campaign.")
        item = Item.objects.select_for_update().get(pk=judgment.item_id)
        if not item.is_gold and item.judgment_count >= campaign.judgments_per_item:
            raise NothingToUndo(
                "Your last judgment can no longer be undone: its triple has all the "
                "judgments it needs."
            )
        assignment = judgment.assignment
        value, flagged = judgment.value, judgment.flagged
        judgment.delete()
        # The last aggregation counted this judgment: make it look stale.
        Campaign.objects.filter(pk=campaign.pk, aggregated_at__gte=judgment.created_at).update(
            aggregated_at=judgment.created_at - timedelta(microseconds=1)
        )
        Item.objects.filter(pk=item.pk).update(judgment_count=F("judgment_count") - 1)
        assignment.status = Assignment.Status.LEASED
        assignment.leased_at = now
        assignment.expires_at = now + timedelta(seconds=campaign.lease_seconds)
        assignment.save(update_fields=["status", "leased_at", "expires_at"])
        _score_gold(campaign, annotator, item, value, -1)
    assignment.undone_value, assignment.undone_flagged = value, flagged
    return assignment
