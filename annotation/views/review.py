"""A campaign's review page (researchers): its items with every answer, filtered (htmx,
driven by the querystring), and the adjudication of an item (htmx swaps its row)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views import View

from core.http import wants_fragment
from core.pagination import COUNT_CAP, CappedCountPaginator
from core.roles import ResearcherRequiredMixin

from ..errors import AnnotationError
from ..models import Campaign, Item, JudgmentValue
from ..review import (
    PAGE_SIZE,
    ReviewFilter,
    campaign_has_scores,
    review_items,
    review_row,
    review_rows,
)
from ..review_forms import AdjudicationForm, ReviewFilterForm
from ..services.adjudication import item_adjudicate

ADJUDICATION_CHOICES = [*JudgmentValue.choices]


def _back_query(raw: str) -> str:
    """The review page's filters from a posted querystring, known names only."""
    known = ("filter", "adjudicated", "agreement_below", "critic_high", "critic_low", "page")
    found = QueryDict(raw)
    return urlencode({name: found[name] for name in known if found.get(name)})


class ReviewView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign.objects.select_related("corpus"), pk=pk)
        form = ReviewFilterForm(request.GET)
        error = ""
        flt = ReviewFilter()
        if form.is_valid():
            flt = form.review_filter()
        else:
            error = form.first_error()
        try:
            items = review_items(campaign=campaign, flt=flt)
        except AnnotationError as exc:
            error, flt = str(exc), ReviewFilter()
            items = review_items(campaign=campaign, flt=flt)
        paginator = CappedCountPaginator(items, PAGE_SIZE)
        page = paginator.get_page(request.GET.get("page"))
        query = urlencode(flt.query)
        context = {
            "campaign": campaign,
            "form": form,
            "flt": flt,
            "error": error,
            "page": page,
            "count": paginator.count,
            "capped": paginator.count >= COUNT_CAP,
            "rows": review_rows(campaign=campaign, items=list(page.object_list)),
            "query": query,
            "page_query": urlencode({**flt.query, "page": page.number}),
            "has_scores": campaign_has_scores(campaign=campaign),
            "choices": ADJUDICATION_CHOICES,
        }
        template = "annotation/review.html"
        if wants_fragment(request):
            template += "#results"
        response = render(request, template, context)
        patch_vary_headers(response, ["HX-Request"])
        return response


class ItemAdjudicateView(ResearcherRequiredMixin, View):
    """Set or clear an item's final label; htmx gets the item's row back."""

    def post(self, request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
        item = get_object_or_404(Item.objects.select_related("campaign"), pk=item_pk, campaign=pk)
        form = AdjudicationForm(request.POST)
        error = ""
        if not form.is_valid():
            error = form.first_error()
        else:
            try:
                item_adjudicate(item=item, value=form.cleaned_data["value"], by=request.user)
            except AnnotationError as exc:
                error = str(exc)
        if wants_fragment(request):
            context = {
                "row": review_row(item=item),
                "campaign": item.campaign,
                "row_error": error,
                "page_query": _back_query(request.POST.get("back", "")),
                "choices": ADJUDICATION_CHOICES,
            }
            # 200 with the refusal in the row: htmx swaps only successful answers.
            return render(request, "annotation/review.html#row", context)
        if error:
            messages.error(request, error)
        else:
            messages.success(request, f"Item {item.pk}: final label saved.")
        back = _back_query(request.POST.get("back", ""))
        url = reverse("annotation:campaign_review", args=[item.campaign_id])
        return redirect(f"{url}{'?' + back if back else ''}#item-{item.pk}")
