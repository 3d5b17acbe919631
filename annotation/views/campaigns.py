"""Researcher pages of a campaign: the list, the create form, a campaign's page (progress,
live statistics polled by htmx, annotators with pause/reinstate, grow, close/reopen) and
streamed exports of the judgments.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views import View

from core.roles import ResearcherRequiredMixin
from corpora.services import upload_save

from .. import exporting, selectors
from ..charts import IntervalBar, interval_bars
from ..errors import AnnotationError
from ..forms import (
    AnnotatorStandingForm,
    CampaignCreateForm,
    CampaignGrowForm,
    CampaignStatusForm,
)
from ..models import Campaign
from ..services.aggregation import campaign_aggregate_job_create
from ..services.campaigns import campaign_create, campaign_grow, campaign_set_status
from ..services.standing import annotator_pause, annotator_reinstate
from .join import join_links_context


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


class CampaignListView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        rows = []
        for campaign in selectors.campaign_list():
            progress = selectors.campaign_progress(campaign=campaign)
            rows.append({"campaign": campaign, "percent": round(progress.percent, 1)})
        return render(request, "annotation/campaign_list.html", {"rows": rows})


class CampaignCreateView(ResearcherRequiredMixin, View):
    template_name = "annotation/campaign_create.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": CampaignCreateForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CampaignCreateForm(request.POST, request.FILES)
        if form.is_valid():
            data = dict(form.cleaned_data)
            reference = data.pop("gold_reference")
            try:
                campaign = campaign_create(
                    **data,
                    gold_reference=upload_save(uploaded=reference) if reference else None,
                    created_by=request.user,
                )
            except AnnotationError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                messages.success(
                    request,
                    f"Campaign {campaign.name} created with {campaign.item_count:,} items "
                    f"and {campaign.gold_count:,} gold items.",
                )
                return redirect("annotation:campaign_detail", pk=campaign.pk)
        return render(request, self.template_name, {"form": form})


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _interval(acceptance: dict) -> str:
    if acceptance.get("low") is None:
        return "–"
    return f"{100 * acceptance['low']:.1f}–{100 * acceptance['high']:.1f}%"


def _acceptance_chart(rows: list[dict], overall: float | None) -> dict[str, Any] | None:
    """Bars (acceptance rate) with whiskers (95% Wilson interval), one per relation."""
    bars = [
        IntervalBar(
            label=row["relation"],
            rate=row["acceptance"].get("rate"),
            low=row["acceptance"].get("low"),
            high=row["acceptance"].get("high"),
            title=f"{row['relation']}: {_rate(row['acceptance'].get('rate'))} accepted "
            f"(95% interval {_interval(row['acceptance'])}, "
            f"{row['acceptance'].get('decided')} items)",
        )
        for row in rows
    ]
    return interval_bars(bars, label_width=120, width=560, overall=overall)


def _annotator_rows(campaign: Campaign, stats: dict) -> list[dict[str, Any]]:
    """Live standing (gold record, paused) joined with what the last aggregation found."""
    found = {row["id"]: row for row in stats.get("annotators", [])}
    rows = []
    for standing in selectors.campaign_annotators(campaign=campaign):
        row = found.pop(standing.annotator_id, {})
        rows.append(
            {
                "id": standing.annotator_id,
                "username": standing.annotator.get_username(),
                "judgments": row.get("judgments"),
                "median_seconds": _number(row.get("median_seconds"), 1),
                "gold_answered": standing.gold_answered,
                "gold_accuracy": _rate(standing.gold_accuracy),
                "agreement": _rate(row.get("agreement")),
                "paused": standing.paused,
                "pause_reason": standing.pause_reason,
                "reinstated": standing.reinstated,
                "in_training": bool(campaign.training_size) and standing.qualified_at is None,
                "training_round": standing.training_round + 1,
                "standing": True,
            }
        )
    for row in found.values():  # judged, but has no standing row (should not happen)
        rows.append(
            {
                "id": row["id"],
                "username": row["username"],
                "judgments": row.get("judgments"),
                "median_seconds": _number(row.get("median_seconds"), 1),
                "gold_answered": row.get("gold_answered", 0),
                "gold_accuracy": _rate(row.get("gold_accuracy")),
                "agreement": _rate(row.get("agreement")),
                "paused": row.get("paused", False),
                "reinstated": row.get("reinstated", False),
                "standing": False,
            }
        )
    return rows


def _live_context(request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
    """The polled part of a campaign's page: progress, agreement, acceptance, annotators.

    Queues an aggregation when judgments came in since the last one (the service keeps
    at most one waiting per campaign), so the numbers follow without anyone asking.
    """
    job = None
    if selectors.campaign_stats_stale(campaign=campaign):
        job = campaign_aggregate_job_create(campaign=campaign, created_by=request.user)
    progress = selectors.campaign_progress(campaign=campaign)
    stats = campaign.stats or {}
    overall = stats.get("overall") or {}
    acceptance = overall.get("acceptance") or {}
    by_relation = stats.get("by_relation") or []
    relation_rows = [
        {
            "relation": row["relation"],
            "items": row.get("items"),
            "judgments": row.get("judgments"),
            "alpha_ordinal": _number(row.get("alpha_ordinal")),
            "alpha_binary": _number(row.get("alpha_binary")),
            "pairwise": _rate(row.get("pairwise")),
            "decided": row["acceptance"].get("decided"),
            "accepted": row["acceptance"].get("accepted"),
            "rate": _rate(row["acceptance"].get("rate")),
            "interval": _interval(row["acceptance"]),
        }
        for row in by_relation
    ]
    return {
        "campaign": campaign,
        "progress": progress,
        "k_warning": selectors.k_warning(campaign=campaign),
        "judgments_percent": round(progress.percent, 1),
        "complete_percent": _percent(progress.items_complete, progress.items),
        "has_stats": bool(stats),
        "stats": stats,
        "job": job,
        "metrics": [
            ("Judgments aggregated", f"{stats.get('judgments', 0):,}"),
            ("Items labelled", f"{stats.get('items_labelled', 0):,}"),
            ("Krippendorff alpha, ordinal", _number(overall.get("alpha_ordinal"))),
            ("Krippendorff alpha, binary", _number(overall.get("alpha_binary"))),
            ("Fleiss kappa", _number(overall.get("fleiss_kappa"))),
            ("Pairwise agreement", _rate(overall.get("pairwise"))),
        ],
        "acceptance": {
            "rate": _rate(acceptance.get("rate")),
            "interval": _interval(acceptance),
            "accepted": acceptance.get("accepted", 0),
            "decided": acceptance.get("decided", 0),
        },
        "relation_rows": relation_rows,
        "chart": _acceptance_chart(by_relation, acceptance.get("rate")),
        "annotator_rows": _annotator_rows(campaign, stats),
        "excluded": stats.get("excluded_annotators") or [],
    }


class CampaignDetailView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign.objects.select_related("corpus"), pk=pk)
        context = {**_live_context(request, campaign), "grow_form": CampaignGrowForm()}
        context.update(join_links_context(request, campaign))
        return render(request, "annotation/campaign_detail.html", context)


class CampaignLiveView(ResearcherRequiredMixin, View):
    """The fragment a campaign's page polls every few seconds."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign.objects.select_related("corpus"), pk=pk)
        response = render(
            request, "annotation/campaign_detail.html#live", _live_context(request, campaign)
        )
        patch_vary_headers(response, ["HX-Request"])
        return response


class CampaignRecomputeView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=pk)
        job = campaign_aggregate_job_create(campaign=campaign, created_by=request.user)
        messages.success(request, f"Recomputing the statistics (job {job.pk}).")
        return redirect("annotation:campaign_detail", pk=campaign.pk)


class CampaignGrowView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=pk)
        form = CampaignGrowForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Give the number of items to add (at least 1).")
        else:
            try:
                added = campaign_grow(campaign=campaign, size=form.cleaned_data["size"])
            except AnnotationError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"Added {added:,} items to {campaign.name}.")
        return redirect("annotation:campaign_detail", pk=campaign.pk)


class CampaignStatusView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=pk)
        form = CampaignStatusForm(request.POST)
        if form.is_valid():
            status = form.cleaned_data["status"]
            campaign_set_status(campaign=campaign, status=status)
            word = "reopened" if status == Campaign.Status.OPEN else "closed"
            messages.success(request, f"Campaign {campaign.name} {word}.")
        else:
            messages.error(request, "Unknown status.")
        return redirect("annotation:campaign_detail", pk=campaign.pk)


class AnnotatorStandingView(ResearcherRequiredMixin, View):
    """Pause or reinstate one annotator in one campaign."""

    def post(self, request: HttpRequest, pk: int, user_pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=pk)
        annotator = get_object_or_404(get_user_model(), pk=user_pk)
        form = AnnotatorStandingForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose pause or reinstate.")
        else:
            name = annotator.get_username()
            if form.cleaned_data["action"] == "pause":
                annotator_pause(campaign=campaign, annotator=annotator)
                messages.success(request, f"{name} is paused in {campaign.name}.")
            else:
                annotator_reinstate(campaign=campaign, annotator=annotator)
                messages.success(request, f"{name} is reinstated in {campaign.name}.")
            # Paused annotators are left out of the labels: aggregate again.
            campaign_aggregate_job_create(campaign=campaign, created_by=request.user)
        return redirect(reverse("annotation:campaign_detail", args=[campaign.pk]) + "#annotators")


EXPORT_KINDS = ("raw", "aggregated")
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


class CampaignExportView(ResearcherRequiredMixin, View):
    """The campaign's judgments (raw) or item labels (aggregated), streamed."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=pk)
        kind = request.GET.get("kind", "raw")
        fmt = request.GET.get("format", "csv")
        if kind not in EXPORT_KINDS or fmt not in exporting.FORMATS:
            return HttpResponseBadRequest(
                "kind is raw or aggregated; format is " + " or ".join(exporting.FORMATS) + "."
            )
        chunks = exporting.judgment_export_chunks(
            campaign=campaign, fmt=fmt, aggregated=kind == "aggregated"
        )
        response = StreamingHttpResponse(chunks, content_type=EXPORT_TYPES[fmt])
        filename = f"{slugify(campaign.name) or 'campaign'}-{kind}.{fmt}"
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response
