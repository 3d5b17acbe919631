"""An annotator's standing in a campaign: their membership row (made by a join link, an
invitation, or a researcher's first visit), pause and reinstatement.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.roles import is_researcher

from ..errors import NotMember
from ..models import Assignment, Campaign, CampaignAnnotator
from .items import _give_back


def _standing(campaign: Campaign, annotator) -> CampaignAnnotator:
    """The annotator's membership row; only researchers get one made here (on their first
    visit): anyone else who is not a member is refused (NotMember)."""
    standing = CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator).first()
    if standing is not None:
        return standing
    if not is_researcher(annotator):
        raise NotMember(
            f"You are not an annotator of the campaign '{campaign.name}'. "
            "Open the link the researchers gave you, or ask them to add you."
        )
    standing, _ = CampaignAnnotator.objects.get_or_create(campaign=campaign, annotator=annotator)
    return standing


PAUSED_BY_RESEARCHER = "paused by a researcher"


def annotator_pause(*, campaign: Campaign, annotator, reason: str = PAUSED_BY_RESEARCHER) -> None:
    """Pause an annotator: no new items, live leases returned, judgments left out of
    aggregation until a researcher reinstates them. `reason` is shown to the researcher
    (campaign page) and to the annotator."""
    now = timezone.now()
    with transaction.atomic():
        CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator).update(
            paused=True, paused_at=now, pause_reason=reason[:300]
        )
        live = list(
            Assignment.objects.select_for_update(of=("self",))
            .filter(campaign=campaign, annotator=annotator, status=Assignment.Status.LEASED)
            .values_list("pk", "item_id")
        )
        if live:
            Assignment.objects.filter(pk__in=[pk for pk, _ in live]).update(
                status=Assignment.Status.EXPIRED
            )
            _give_back([item_id for _, item_id in live])


def annotator_reinstate(*, campaign: Campaign, annotator) -> None:
    CampaignAnnotator.objects.update_or_create(
        campaign=campaign,
        annotator=annotator,
        defaults={"paused": False, "paused_at": None, "pause_reason": "", "reinstated": True},
    )


def pause_message(reason: str) -> str:
    """What a paused annotator is told."""
    why = f" ({reason})" if reason else ""
    return (
        f"Your judgments in this campaign are paused for review{why}. "
        "A researcher can reinstate you."
    )


def _pause_reason(campaign: Campaign, annotator) -> str:
    return (
        CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator)
        .values_list("pause_reason", flat=True)
        .first()
        or ""
    )
