"""Membership: which annotators belong to which campaign (by join link, or added by a
researcher). An annotator sees and judges only the campaigns they belong to; researchers
may judge any campaign (they become members on their first visit).

Also the researcher's hold on an annotator account: invite to a campaign (an existing
annotator, or one made with a username), deactivate (no login, no judging) and reinstate.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from core.roles import ANNOTATOR, is_annotator, is_researcher

from ..errors import AnnotationError, NotMember
from ..models import Campaign, CampaignAnnotator, JoinLink

USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}$")


def member_add(*, campaign: Campaign, annotator, via: JoinLink | None = None) -> CampaignAnnotator:
    """Make `annotator` a member of `campaign` (again a no-op when they already are)."""
    standing, created = CampaignAnnotator.objects.get_or_create(
        campaign=campaign, annotator=annotator, defaults={"joined_via": via}
    )
    return standing


def member_required(*, campaign: Campaign, annotator) -> None:
    """Refuse (NotMember) an annotator who does not belong to `campaign`; researchers may
    judge any campaign."""
    if is_researcher(annotator):
        return
    if not CampaignAnnotator.objects.filter(campaign=campaign, annotator=annotator).exists():
        raise NotMember(f"You are not an annotator of the campaign '{campaign.name}'.")


def member_invite(
    *, campaign: Campaign, username: str, create: bool = False
) -> tuple[CampaignAnnotator, bool]:
    """Add the annotator `username` to `campaign`; with `create`, make the account (in the
    annotator role, no password yet: a researcher sets one, or they use a join link) when
    there is none. Returns the membership and whether the account was made."""
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise AnnotationError(
            "A username has 1 to 150 letters, digits and @ . + - _.", field="username"
        )
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.filter(username=username).first()
        made = False
        if user is None:
            if not create:
                raise AnnotationError(f"No user named {username!r}.", field="username")
            user = User(username=username)
            user.set_unusable_password()
            user.save()
            user.groups.add(Group.objects.get_or_create(name=ANNOTATOR)[0])
            made = True
        elif not is_annotator(user) and not is_researcher(user):
            raise AnnotationError(
                f"{username} is neither an annotator nor a researcher.", field="username"
            )
        return member_add(campaign=campaign, annotator=user), made


def annotator_deactivate(*, annotator) -> None:
    """The annotator can no longer log in or judge (their judgments stay)."""
    if is_researcher(annotator):
        raise AnnotationError("Researchers are not deactivated here.")
    get_user_model().objects.filter(pk=annotator.pk).update(is_active=False)
    annotator.is_active = False


def annotator_activate(*, annotator) -> None:
    get_user_model().objects.filter(pk=annotator.pk).update(is_active=True)
    annotator.is_active = True
