"""Membership: which annotators belong to which campaign (by join link, or added by a
researcher). An annotator sees and judges only the campaigns they belong to."""

from __future__ import annotations

from ..models import Campaign, CampaignAnnotator, JoinLink


def member_add(*, campaign: Campaign, annotator, via: JoinLink | None = None) -> CampaignAnnotator:
    """Make `annotator` a member of `campaign` (again a no-op when they already are)."""
    standing, created = CampaignAnnotator.objects.get_or_create(
        campaign=campaign, annotator=annotator, defaults={"joined_via": via}
    )
    return standing
