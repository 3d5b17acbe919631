"""An annotator's standing in a campaign: the row made on their first visit, pause and
reinstatement.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..models import Assignment, Campaign, CampaignAnnotator
from .items import _give_back


def _standing(campaign: Campaign, annotator) -> CampaignAnnotator:
    standing, _ = CampaignAnnotator.objects.get_or_create(campaign=campaign, annotator=annotator)
    return standing


def annotator_pause(*, campaign: Campaign, annotator) -> None:
    """Pause an annotator: no new items, live leases returned, judgments left out of
    aggregation until a researcher reinstates them."""
    now = timezone.now()
    with transaction.atomic():
        CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator).update(
            paused=True, paused_at=now
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
        defaults={"paused": False, "paused_at": None, "reinstated": True},
    )
