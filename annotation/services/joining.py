"""Join links: a researcher makes one for a campaign and pastes it into a crowd platform's
study; whoever opens it becomes an annotator of that campaign on the spot, without a
password.

- The platform's worker id comes from the URL (Prolific `PROLIFIC_PID`, MTurk `workerId`,
  or a plain `worker`); the same id is always the same annotator (`CrowdWorker`'s unique
  constraint; two arrivals with one id at once make one account). Without an id, a fresh
  anonymous annotator is made and kept in the browser's session.
- A link's `uses` counts distinct annotators, raised by a conditional UPDATE so that
  `max_uses` holds under concurrent arrivals; a returning worker does not use it again.
  A refused join (revoked, expired, used up, closed campaign) makes no account.
- After the campaign's `items_per_session` judgments since the session began, the
  annotator gets the link's completion code (`session_completion`), counted once.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.roles import ANNOTATOR

from ..errors import AnnotationError, JoinLinkGone, JoinLinkNotFound
from ..models import Campaign, CampaignAnnotator, CrowdWorker, JoinLink, Judgment
from .membership import member_add

# The worker id parameter of each platform, then the ids kept with the membership.
PLATFORM_PARAMS: dict[str, tuple[str, dict[str, str]]] = {
    JoinLink.Platform.PROLIFIC: (
        "PROLIFIC_PID",
        {"STUDY_ID": "study_id", "SESSION_ID": "session_id"},
    ),
    JoinLink.Platform.MTURK: (
        "workerId",
        {"assignmentId": "assignment_id", "hitId": "hit_id", "turkSubmitTo": "submit_to"},
    ),
    JoinLink.Platform.PLAIN: ("worker", {}),
}
# What each platform's study page pastes into the link (the researcher copies this URL).
PLATFORM_URL_QUERY = {
    JoinLink.Platform.PROLIFIC: (
        "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    ),
    # MTurk's ExternalQuestion appends workerId, assignmentId, hitId and turkSubmitTo.
    JoinLink.Platform.MTURK: "",
    JoinLink.Platform.PLAIN: "worker=WORKER_ID",
}
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
WORKER_ID_MAX = 128
PLATFORM_ID_MAX = 200
USERNAME_MAX = 150
# The session remembers the anonymous annotator a browser was given, and which campaigns
# its link-made annotator may judge (read by the judging page, so other annotators cost
# no query).
SESSION_ANONYMOUS = "skd_join_anonymous"
SESSION_CROWD = "skd_crowd_campaigns"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@+-]+")


@dataclass(frozen=True)
class PlatformIds:
    platform: str
    worker_id: str
    extra: dict[str, str] = field(default_factory=dict)


def platform_ids_from(params: Mapping[str, str]) -> PlatformIds | None:
    """The worker's platform and id from a join URL's query; None when it carries none.

    Raises AnnotationError for an id that is too long to be a platform's."""
    for platform, (worker_param, extras) in PLATFORM_PARAMS.items():
        worker_id = (params.get(worker_param) or "").strip()
        if not worker_id:
            continue
        if len(worker_id) > WORKER_ID_MAX:
            raise AnnotationError(
                f"{worker_param} is too long (at most {WORKER_ID_MAX} characters).",
                field=worker_param,
            )
        extra = {
            name: value[:PLATFORM_ID_MAX]
            for param, name in extras.items()
            if (value := (params.get(param) or "").strip())
        }
        return PlatformIds(platform=str(platform), worker_id=worker_id, extra=extra)
    return None


def is_mturk_preview(params: Mapping[str, str]) -> bool:
    """MTurk shows the task before a worker accepts it: no account then."""
    return params.get("assignmentId") == MTURK_PREVIEW


def _completion_code() -> str:
    return secrets.token_hex(4).upper()


def join_link_create(
    *,
    campaign: Campaign,
    label: str = "",
    platform: str = JoinLink.Platform.PLAIN,
    max_uses: int | None = None,
    expires_at: datetime | None = None,
    completion_code: str = "",
    completion_url: str = "",
    created_by=None,
) -> JoinLink:
    """A new unguessable link to `campaign`; the completion code is made when not given."""
    if platform not in JoinLink.Platform.values:
        raise AnnotationError(
            f"Unknown platform {platform!r}; choose one of {', '.join(JoinLink.Platform.values)}.",
            field="platform",
        )
    if max_uses is not None and max_uses < 1:
        raise AnnotationError("Allow at least one use, or leave it empty.", field="max_uses")
    if expires_at is not None and expires_at <= timezone.now():
        raise AnnotationError("The expiry must be in the future.", field="expires_at")
    completion_code = (completion_code or "").strip() or _completion_code()
    if len(completion_code) > 64:
        raise AnnotationError(
            "A completion code has at most 64 characters.", field="completion_code"
        )
    if completion_url and not completion_url.startswith(("https://", "http://")):
        raise AnnotationError(
            "The completion URL must start with https://.", field="completion_url"
        )
    link = JoinLink(
        campaign=campaign,
        token=secrets.token_urlsafe(24),
        label=label.strip()[:100],
        platform=platform,
        max_uses=max_uses,
        expires_at=expires_at,
        completion_code=completion_code,
        completion_url=completion_url.strip(),
        created_by=created_by,
    )
    link.full_clean()
    link.save()
    return link


def join_link_revoke(*, link: JoinLink, now: datetime | None = None) -> JoinLink:
    """No one joins through `link` any more (members who joined keep judging)."""
    if link.revoked_at is None:
        link.revoked_at = now or timezone.now()
        JoinLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=link.revoked_at
        )
    return link


def join_link_refusal(link: JoinLink, now: datetime | None = None) -> str | None:
    """Why no one new may join through `link` now, or None. (Used up is decided when
    counting, since a returning worker may still come in.)"""
    now = now or timezone.now()
    if link.revoked_at is not None:
        return "This link was withdrawn by the researchers."
    if link.expires_at is not None and link.expires_at <= now:
        return "This link has expired."
    if link.campaign.status != Campaign.Status.OPEN:
        return "This study is closed."
    return None


def join_link_get(*, token: str, now: datetime | None = None) -> JoinLink:
    """The link `token` names, usable now; raises JoinLinkNotFound or JoinLinkGone."""
    link = (
        JoinLink.objects.select_related("campaign")
        .defer("campaign__stats")
        .filter(token=token)
        .first()
        if 0 < len(token) <= 64
        else None
    )
    if link is None:
        raise JoinLinkNotFound("There is no study at this link. Check that it was copied whole.")
    reason = join_link_refusal(link, now)
    if reason:
        raise JoinLinkGone(reason)
    return link


def _username(platform: str, worker_id: str) -> str:
    safe = _UNSAFE.sub("-", worker_id).strip("-") or "worker"
    base = f"{platform}-{safe}"[: USERNAME_MAX - 9]
    User = get_user_model()
    if not User.objects.filter(username=base).exists():
        return base
    return f"{base}-{secrets.token_hex(4)}"


def _annotator_make(platform: str, worker_id: str):
    User = get_user_model()
    user = User(username=_username(platform, worker_id))
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get_or_create(name=ANNOTATOR)[0])
    return user


def _crowd_annotator(ids: PlatformIds) -> tuple[object, bool]:
    """The annotator of this platform id, made on first sight. Concurrent arrivals with the
    same id: one insert wins the unique constraint, the others read its row."""
    for _ in range(3):
        worker = (
            CrowdWorker.objects.select_related("annotator")
            .filter(platform=ids.platform, worker_id=ids.worker_id)
            .first()
        )
        if worker is not None:
            return worker.annotator, False
        try:
            with transaction.atomic():
                user = _annotator_make(ids.platform, ids.worker_id)
                CrowdWorker.objects.create(
                    platform=ids.platform, worker_id=ids.worker_id, annotator=user
                )
            return user, True
        except IntegrityError:
            continue  # someone else made this worker (or took the username) just now
    raise AnnotationError("Too many people arrived with this id at once; open the link again.")


def _anonymous_annotator(session) -> tuple[object, bool, str]:
    """The anonymous annotator this browser was given before, or a fresh one (with the id
    the server chose for them)."""
    known = session.get(SESSION_ANONYMOUS) if session is not None else None
    if known:
        worker = (
            CrowdWorker.objects.select_related("annotator")
            .filter(platform=ANONYMOUS_PLATFORM, worker_id=known)
            .first()
        )
        if worker is not None:
            return worker.annotator, False, known
    ids = PlatformIds(platform=ANONYMOUS_PLATFORM, worker_id=f"anon-{secrets.token_hex(8)}")
    return *_crowd_annotator(ids), ids.worker_id


# Anonymous arrivals are plain-link workers whose id the server chose.
ANONYMOUS_PLATFORM = JoinLink.Platform.PLAIN


@dataclass(frozen=True)
class JoinResult:
    annotator: object
    link: JoinLink
    standing: CampaignAnnotator
    account_created: bool
    new_member: bool
    anonymous_id: str = ""  # the id the server chose for an arrival without one


def join(
    *,
    token: str,
    params: Mapping[str, str],
    session=None,
    user=None,
    now: datetime | None = None,
) -> JoinResult:
    """Find or make the annotator arriving through the link `token` (platform ids from the
    URL's `params`), make them a member of its campaign and start a session. Without ids,
    `user` (the signed-in annotator, if any) or the anonymous annotator the `session` was
    given before comes back; else a fresh anonymous annotator is made.

    Raises JoinLinkNotFound, JoinLinkGone (revoked, expired, used up, closed): then no
    account is made."""
    now = now or timezone.now()
    if is_mturk_preview(params):
        raise AnnotationError("Accept the HIT first; this is MTurk's preview.")
    ids = platform_ids_from(params)
    link = join_link_get(token=token, now=now)
    anonymous_id = ""
    with transaction.atomic():
        if ids is not None:
            annotator, created = _crowd_annotator(ids)
        elif user is not None and user.is_authenticated and user.is_active:
            annotator, created = user, False
        else:
            annotator, created, anonymous_id = _anonymous_annotator(session)
        standing, new_member = _member_counted(link, annotator)
        standing = _session_start(standing, link, ids, now)
    return JoinResult(
        annotator=annotator,
        link=link,
        standing=standing,
        account_created=created,
        new_member=new_member,
        anonymous_id=anonymous_id,
    )


def join_session_remember(*, session, result: JoinResult) -> None:
    """Keep the arrival in the browser's session (after login, which may renew it): the
    anonymous annotator to resume, and the campaigns its link-made annotator judges."""
    if result.anonymous_id:
        session[SESSION_ANONYMOUS] = result.anonymous_id
    campaigns = set(session.get(SESSION_CROWD, []))
    campaigns.add(result.link.campaign_id)
    session[SESSION_CROWD] = sorted(campaigns)


def _member_counted(link: JoinLink, annotator) -> tuple[CampaignAnnotator, bool]:
    """Membership through `link`; a new member takes one of the link's uses (refused when
    none is left, which undoes the whole join)."""
    existing = CampaignAnnotator.objects.filter(campaign_id=link.campaign_id, annotator=annotator)
    standing = existing.first()
    if standing is not None:
        return standing, False
    with transaction.atomic():
        try:
            with transaction.atomic():
                standing = CampaignAnnotator.objects.create(
                    campaign_id=link.campaign_id, annotator=annotator, joined_via=link
                )
        except IntegrityError:  # the same worker arriving twice at once: the other counted
            return member_add(campaign=link.campaign, annotator=annotator), False
        taken = (
            JoinLink.objects.filter(pk=link.pk)
            .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
            .update(uses=F("uses") + 1)
        )
        if not taken:
            raise JoinLinkGone("This study is full: every place through this link is taken.")
    return standing, True


def _session_start(
    standing: CampaignAnnotator, link: JoinLink, ids: PlatformIds | None, now: datetime
) -> CampaignAnnotator:
    """A session starts on arrival unless one is under way (reopening the link resumes)."""
    updates: dict = {}
    if standing.session_started_at is None:
        updates["session_started_at"] = now
    if ids is not None:
        platform_ids = {**(standing.platform_ids or {}), **ids.extra}
        platform_ids.update(platform=ids.platform, worker_id=ids.worker_id)
        if platform_ids != standing.platform_ids:
            updates["platform_ids"] = platform_ids
    if standing.joined_via_id is None:
        updates["joined_via"] = link
    if updates:
        for name, value in updates.items():
            setattr(standing, name, value)
        standing.save(update_fields=list(updates))
    return standing


@dataclass(frozen=True)
class Completion:
    code: str
    url: str
    platform: str
    judged: int


def session_completion(
    *, campaign: Campaign, annotator, now: datetime | None = None
) -> Completion | None:
    """The completion the annotator has earned in `campaign`, or None while their session
    goes on (or they have none: researchers, invited annotators, no `items_per_session`).

    The session ends when they have made `items_per_session` judgments since it began:
    `completions` is raised once (a conditional update ends the session), and the code
    stays on their page until they open the link again, which starts a new session."""
    if not campaign.items_per_session:
        return None
    standing = (
        CampaignAnnotator.objects.select_related("joined_via")
        .filter(campaign=campaign, annotator=annotator, joined_via__isnull=False)
        .first()
    )
    if standing is None:
        return None
    link = standing.joined_via
    if standing.session_started_at is None:
        # Between sessions: the last one ended with a code.
        if not standing.completions:
            return None
        return Completion(link.completion_code, _completion_url(link), link.platform, 0)
    judged = Judgment.objects.filter(
        campaign=campaign, annotator=annotator, created_at__gte=standing.session_started_at
    ).count()
    if judged < campaign.items_per_session:
        return None
    CampaignAnnotator.objects.filter(
        pk=standing.pk, session_started_at=standing.session_started_at
    ).update(completions=F("completions") + 1, session_started_at=None)
    return Completion(link.completion_code, _completion_url(link), link.platform, judged)


def _completion_url(link: JoinLink) -> str:
    url = link.completion_url
    if url and "{code}" in url:
        return url.replace("{code}", link.completion_code)
    return url


def join_url_query(link: JoinLink) -> str:
    """The query the platform fills in, for the URL a researcher pastes into the study."""
    return PLATFORM_URL_QUERY.get(link.platform, "")
