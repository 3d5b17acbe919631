"""The annotator's pages: the home page (`home`, at the site root: researchers are sent to
their corpora, annotators choose a campaign) and the judging page, one triple at a time,
keyboard first; each answer posts with htmx and gets back only the item card (without
JavaScript the same form posts and redirects). What they see is `selectors.ItemView`,
never an Item or a Triple.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from django_htmx.http import HttpResponseClientRedirect

from core.roles import ResearcherRequiredMixin, is_annotator, is_researcher

from .. import selectors
from ..errors import AnnotationError, NotMember
from ..forms import (
    JudgmentForm,
)
from ..models import Campaign, JudgmentValue
from ..services.judgments import judgment_submit, judgment_undo
from ..services.leasing import assignment_next, assignment_skip
from .join import crowd_campaign, session_done

# The keys of the annotator page, in the order the buttons show them.
ANSWER_KEYS = (
    ("1", JudgmentValue.ALWAYS),
    ("2", JudgmentValue.SOMETIMES),
    ("3", JudgmentValue.FARFETCHED),
    ("4", JudgmentValue.INVALID),
    ("0", JudgmentValue.CANT_JUDGE),
)
ANSWERS = [{"key": key, "value": int(value), "label": value.label} for key, value in ANSWER_KEYS]
NOTHING_LEFT = "Nothing left for you in this campaign. Thank you!"


class AnnotatorRequiredMixin(ResearcherRequiredMixin):
    """Pages for annotators (and researchers, who may judge too): others get 403."""

    def test_func(self) -> bool:
        user = self.request.user
        return is_annotator(user) or is_researcher(user)

    def handle_no_permission(self):
        if self.request.htmx and not self.request.user.is_authenticated:
            # Logged out while judging: send the whole page to the login form rather
            # than letting htmx swap the login page into the item card.
            login = redirect_to_login(self.request.get_full_path())
            return HttpResponseClientRedirect(login["Location"])
        return super().handle_no_permission()


# --- The annotator's page -------------------------------------------------------------


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Researchers start at their corpora; annotators choose a campaign to judge."""
    if is_researcher(request.user):
        return redirect("corpora:corpus_list")
    if (crowd := crowd_campaign(request)) is not None:  # a link-made annotator
        return redirect("annotation:judge", pk=crowd)
    campaigns = []
    if is_annotator(request.user):
        for campaign in selectors.campaigns_open_for_annotators(annotator=request.user):
            mine = selectors.annotator_progress(campaign=campaign, annotator=request.user)
            campaigns.append(
                {"campaign": campaign, "today": mine.today, "judged": mine.in_campaign}
            )
    return render(request, "annotation/home.html", {"campaigns": campaigns})


def _apply_judgment(form: JudgmentForm, campaign: Campaign, user) -> list[tuple[str, str]]:
    """Carry out one press (answer, skip or undo); the notices to show for it."""
    if not form.is_valid():
        return [("error", form.first_error())]
    data = form.cleaned_data
    try:
        if data["action"] == "undo":
            judgment_undo(campaign=campaign, annotator=user)
            return [("info", "Your last answer was taken back: answer it again.")]
        if data["action"] == "skip":
            assignment_skip(assignment_id=data["assignment"], annotator=user, campaign=campaign)
            return [("info", "Skipped.")]
        result = judgment_submit(
            assignment_id=data["assignment"],
            annotator=user,
            value=data["value"],
            flagged=data["flagged"],
            campaign=campaign,
        )
    except AnnotationError as exc:
        return [("error", str(exc))]
    if not result.created:
        return [("info", "That triple was already answered; your first answer stands.")]
    saved = f"Saved: {JudgmentValue(data['value']).label}"
    return [("success", saved + (", flagged as offensive." if data["flagged"] else "."))]


def _judge_context(
    request: HttpRequest, campaign: Campaign, notices: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """The item card: the next item (as an ItemView only), progress and notices."""
    notices = list(notices or [])
    item, finished = None, False
    try:
        assignment = assignment_next(campaign=campaign, annotator=request.user)
    except NotMember:
        raise  # not their campaign: a 403 page, not a notice on the judging page
    except AnnotationError as exc:
        notices.append(("error", str(exc)))
    else:
        if assignment is None:
            finished = True
        else:
            item = selectors.item_view(assignment=assignment)
    mine = selectors.annotator_progress(campaign=campaign, annotator=request.user)
    overall = selectors.campaign_progress(campaign=campaign)
    return {
        "campaign": campaign,
        "item": item,
        "finished": finished,
        "nothing_left": NOTHING_LEFT,
        "notices": notices,
        "answers": ANSWERS,
        "judged_today": mine.today,
        "judged_here": mine.in_campaign,
        "campaign_percent": round(overall.percent, 1),
    }


class JudgeView(AnnotatorRequiredMixin, View):
    template_name = "annotation/judge.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign.objects.defer("stats"), pk=pk)
        if (done := session_done(request, campaign)) is not None:
            return done
        context = _judge_context(request, campaign)
        context["relations"] = selectors.relation_guidelines(campaign=campaign)
        return render(request, self.template_name, context)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign.objects.defer("stats"), pk=pk)
        notices = _apply_judgment(JudgmentForm(request.POST), campaign, request.user)
        if (done := session_done(request, campaign)) is not None:
            return done
        if request.htmx:
            context = _judge_context(request, campaign, notices)
            return render(request, f"{self.template_name}#judge-card", context)
        for level, text in notices:
            if level == "error":
                messages.error(request, text)
            elif level == "success":
                messages.success(request, text)
            else:
                messages.info(request, text)
        return redirect("annotation:judge", pk=campaign.pk)
