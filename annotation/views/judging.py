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
from ..guidelines import SCALE, relation_examples
from ..models import Campaign, JudgmentValue
from ..services.judgments import judgment_submit, judgment_undo
from ..services.leasing import assignment_next, assignment_skip
from ..services.training import TrainingFeedback, training_answer, training_next
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
CLOSED = "This campaign is closed: there is nothing to judge or undo here any more. Thank you!"
# The answer an undo took back, kept in the session until that item is answered again, so
# the form shows it (with or without htmx).
UNDONE_KEY = "annotation:undone"


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


def _apply_judgment(
    request: HttpRequest, form: JudgmentForm, campaign: Campaign
) -> tuple[list[tuple[str, str]], TrainingFeedback | None]:
    """Carry out one press (answer, skip, undo, training answer or next); the notices to
    show for it, and the feedback on a training answer."""
    user = request.user
    if not form.is_valid():
        return [("error", form.first_error())], None
    data = form.cleaned_data
    request.session.pop(UNDONE_KEY, None)
    try:
        if data["action"] == "next":
            return [], None
        if data["action"] == "train":
            feedback = training_answer(
                campaign=campaign,
                annotator=user,
                item_id=data["training_item"],
                value=data["value"],
            )
            return [], feedback
        if data["action"] == "undo":
            assignment = judgment_undo(campaign=campaign, annotator=user)
            request.session[UNDONE_KEY] = {
                "assignment": assignment.pk,
                "value": assignment.undone_value,
                "flagged": assignment.undone_flagged,
            }
            label = JudgmentValue(assignment.undone_value).label
            flag = " and flagged as offensive" if assignment.undone_flagged else ""
            return [
                ("info", f"Your last answer ({label}{flag}) was taken back: answer it again.")
            ], None
        if data["action"] == "skip":
            assignment_skip(assignment_id=data["assignment"], annotator=user, campaign=campaign)
            return [("info", "Skipped.")], None
        result = judgment_submit(
            assignment_id=data["assignment"],
            annotator=user,
            value=data["value"],
            flagged=data["flagged"],
            campaign=campaign,
        )
    except AnnotationError as exc:
        return [("error", str(exc))], None
    if not result.created:
        return [("info", "That triple was already answered; your first answer stands.")], None
    saved = f"Saved: {JudgmentValue(data['value']).label}"
    return [("success", saved + (", flagged as offensive." if data["flagged"] else "."))], None


def _judge_context(
    request: HttpRequest,
    campaign: Campaign,
    notices: list[tuple[str, str]] | None = None,
    feedback: TrainingFeedback | None = None,
) -> dict[str, Any]:
    """The item card: the next item (as an ItemView only) or training item, the feedback
    on a training answer, progress and notices; a closed campaign offers nothing."""
    notices = list(notices or [])
    item, training, finished, previous = None, None, False, None
    closed = campaign.status != Campaign.Status.OPEN
    if not closed and feedback is None:
        try:
            training = training_next(campaign=campaign, annotator=request.user)
            if training is None:
                assignment = assignment_next(campaign=campaign, annotator=request.user)
                if assignment is None:
                    finished = True
                else:
                    item = selectors.item_view(assignment=assignment)
        except NotMember:
            raise  # not their campaign: a 403 page, not a notice on the judging page
        except AnnotationError as exc:
            notices.append(("error", str(exc)))
    if item is not None:
        undone = request.session.get(UNDONE_KEY)
        if undone and undone.get("assignment") == item.assignment_id:
            previous = undone
    mine = selectors.annotator_progress(campaign=campaign, annotator=request.user)
    overall = selectors.campaign_progress(campaign=campaign)
    return {
        "campaign": campaign,
        "item": item,
        "training": training,
        "feedback": feedback,
        "closed": closed,
        "closed_text": CLOSED,
        "previous": previous,
        "finished": finished,
        "nothing_left": NOTHING_LEFT,
        "notices": notices,
        "answers": ANSWERS,
        "judged_today": mine.today,
        "judged_here": mine.in_campaign,
        "campaign_percent": round(overall.percent, 1),
    }


def _guidelines_context(campaign: Campaign, judged_here: int) -> dict[str, Any]:
    return {
        "relations": relation_examples(relations=selectors.relation_guidelines(campaign=campaign)),
        "scale": SCALE,
        # Open on the first visit (nothing judged yet), collapsible after.
        "guidelines_open": judged_here == 0,
    }


class JudgeView(AnnotatorRequiredMixin, View):
    template_name = "annotation/judge.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign.objects.defer("stats"), pk=pk)
        if (done := session_done(request, campaign)) is not None:
            return done
        context = _judge_context(request, campaign)
        context.update(_guidelines_context(campaign, context["judged_here"]))
        return render(request, self.template_name, context)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign.objects.defer("stats"), pk=pk)
        notices, feedback = _apply_judgment(request, JudgmentForm(request.POST), campaign)
        if (done := session_done(request, campaign)) is not None:
            return done
        if request.htmx:
            context = _judge_context(request, campaign, notices, feedback)
            return render(request, f"{self.template_name}#judge-card", context)
        if feedback is not None:  # without htmx the feedback is shown on the page itself
            context = _judge_context(request, campaign, notices, feedback)
            context.update(_guidelines_context(campaign, context["judged_here"]))
            return render(request, self.template_name, context)
        for level, text in notices:
            if level == "error":
                messages.error(request, text)
            elif level == "success":
                messages.success(request, text)
            else:
                messages.info(request, text)
        return redirect("annotation:judge", pk=campaign.pk)
