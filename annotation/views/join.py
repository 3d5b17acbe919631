"""Join links: the page a crowd worker opens from Prolific, MTurk or a plain link
(instructions, consent, then judging with an account made on the spot), the completion
code at the end of a session, and the researcher's panel of a campaign's links.

The rules are `services.joining`'s; this module reads the request (the platform's ids in
the query, the client address for the rate limit) and picks the page.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django_htmx.http import HttpResponseClientRedirect

from core.errors import AppError
from core.http import wants_fragment
from core.roles import ResearcherRequiredMixin, is_researcher

from ..models import Campaign, JoinLink
from ..services.joining import (
    SESSION_CROWD,
    is_mturk_preview,
    join,
    join_link_create,
    join_link_get,
    join_link_refusal,
    join_link_revoke,
    join_session_remember,
    join_url_query,
    session_completion,
)

BACKEND = "django.contrib.auth.backends.ModelBackend"


def _client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def _rate_limited(request: HttpRequest) -> bool:
    """More join-page requests from this address this minute than settings allow."""
    limit = settings.JOIN_RATE_PER_MINUTE
    if not limit:
        return False
    minute = int(timezone.now().timestamp() // 60)
    key = f"annotation:join-rate:{_client_address(request)}:{minute}"
    if cache.add(key, 1, timeout=61):
        return limit < 1
    try:
        return cache.incr(key) > limit
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=61)
        return False


def _refused(request: HttpRequest, exc: AppError) -> HttpResponse:
    return render(request, "annotation/join_refused.html", {"error": exc}, status=exc.status)


def _too_many(request: HttpRequest) -> HttpResponse:
    error = AppError(
        "Too many people joined from your network in the last minute. "
        "Wait a minute and open the link again.",
        code="rate_limited",
        status=429,
    )
    response = _refused(request, error)
    response["Retry-After"] = "60"
    return response


class JoinView(View):
    """GET: the campaign's instructions and a consent button. POST: join and judge."""

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        if _rate_limited(request):
            return _too_many(request)
        try:
            link = join_link_get(token=token)
        except AppError as exc:
            return _refused(request, exc)
        context = {
            "link": link,
            "campaign": link.campaign,
            "preview": is_mturk_preview(request.GET),
            "researcher": is_researcher(request.user),
            "action": request.get_full_path(),
        }
        return render(request, "annotation/join.html", context)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        if _rate_limited(request):
            return _too_many(request)
        if is_researcher(request.user):
            messages.info(
                request,
                "You are signed in as a researcher, so no worker account was made: open "
                "the link in a private window to try it as a worker.",
            )
            try:
                link = join_link_get(token=token)
            except AppError as exc:
                return _refused(request, exc)
            return redirect("annotation:judge", pk=link.campaign_id)
        try:
            result = join(
                token=token, params=request.GET, session=request.session, user=request.user
            )
        except AppError as exc:
            return _refused(request, exc)
        if request.user != result.annotator:
            login(request, result.annotator, backend=BACKEND)
        join_session_remember(session=request.session, result=result)
        return redirect("annotation:judge", pk=result.link.campaign_id)


def crowd_campaign(request: HttpRequest) -> int | None:
    """The campaign a link-made annotator came for (from their session), or None."""
    campaigns = request.session.get(SESSION_CROWD) if request.user.is_authenticated else None
    return campaigns[-1] if campaigns else None


def session_done(request: HttpRequest, campaign: Campaign) -> HttpResponse | None:
    """The completion page (or the study's completion URL) once a link-made annotator's
    session is done; None otherwise. Other annotators cost no query here."""
    if campaign.pk not in request.session.get(SESSION_CROWD, ()):
        return None
    completion = session_completion(campaign=campaign, annotator=request.user)
    if completion is None:
        return None
    if completion.url:
        if request.htmx:
            return HttpResponseClientRedirect(completion.url)
        return redirect(completion.url)
    context = {"campaign": campaign, "completion": completion}
    if wants_fragment(request):
        return render(request, "annotation/join_complete.html#complete-card", context)
    return render(request, "annotation/join_complete.html", context)


# --- The researcher's panel ---------------------------------------------------------


class JoinLinkForm(forms.Form):
    label = forms.CharField(max_length=100, required=False)
    platform = forms.ChoiceField(choices=JoinLink.Platform.choices)
    max_uses = forms.IntegerField(
        min_value=1, required=False, help_text="Empty: as many people as come."
    )
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Empty: never.",
    )
    completion_code = forms.CharField(
        max_length=64, required=False, help_text="Empty: one is made up."
    )
    completion_url = forms.URLField(
        label="Completion URL",
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="Prolific: https://app.prolific.com/submissions/complete?cc=CODE. "
        "Empty: the code is shown to paste.",
    )


def join_link_rows(request: HttpRequest, campaign: Campaign) -> list[dict]:
    """The campaign's links with their status and the URL to paste into the platform."""
    now = timezone.now()
    rows = []
    for link in campaign.join_links.all():
        link.campaign = campaign
        refusal = join_link_refusal(link, now)
        full = link.max_uses is not None and link.uses >= link.max_uses
        if link.revoked_at:
            state = "revoked"
        elif refusal:
            state = "expired" if link.expires_at and link.expires_at <= now else "closed"
        else:
            state = "full" if full else "open"
        url = request.build_absolute_uri(reverse("join", args=[link.token]))
        query = join_url_query(link)
        rows.append({"link": link, "state": state, "url": f"{url}?{query}" if query else url})
    return rows


def join_links_context(request: HttpRequest, campaign: Campaign) -> dict:
    return {"join_links": join_link_rows(request, campaign), "join_link_form": JoinLinkForm()}


class JoinLinkCreateView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=pk)
        form = JoinLinkForm(request.POST)
        if not form.is_valid():
            for field, errors in form.errors.items():
                messages.error(request, f"{field}: {errors[0]}")
        else:
            data = dict(form.cleaned_data)
            expires = data["expires_at"]
            if isinstance(expires, datetime) and timezone.is_naive(expires):
                data["expires_at"] = timezone.make_aware(expires)
            try:
                link = join_link_create(campaign=campaign, created_by=request.user, **data)
            except AppError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request, f"Join link made; its completion code is {link.completion_code}."
                )
        return redirect(reverse("annotation:campaign_detail", args=[campaign.pk]) + "#join-links")


class JoinLinkRevokeView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int, link_pk: int) -> HttpResponse:
        link = get_object_or_404(JoinLink, pk=link_pk, campaign_id=pk)
        join_link_revoke(link=link)
        messages.success(request, "Join link revoked: no one new can join through it.")
        return redirect(reverse("annotation:campaign_detail", args=[pk]) + "#join-links")
