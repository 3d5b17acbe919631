from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .roles import is_researcher


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Researchers start at their corpora; everyone else at the annotator's page."""
    if is_researcher(request.user):
        return redirect("generation:corpus_list")
    return render(request, "annotator_home.html")
