from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotation.selectors import annotator_progress, campaigns_open_for_annotators
from core.roles import is_annotator, is_researcher


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Researchers start at their corpora; annotators choose a campaign to judge."""
    if is_researcher(request.user):
        return redirect("corpora:corpus_list")
    campaigns = []
    if is_annotator(request.user):
        for campaign in campaigns_open_for_annotators():
            mine = annotator_progress(campaign=campaign, annotator=request.user)
            campaigns.append(
                {"campaign": campaign, "today": mine.today, "judged": mine.in_campaign}
            )
    return render(request, "annotator_home.html", {"campaigns": campaigns})
