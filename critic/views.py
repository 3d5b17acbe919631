"""The critic's dashboard (researchers): versions, curves, the threshold slider,
target precision, presets and filtered exports."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views import View

from annotation.models import Campaign
from core.errors import AppError
from core.roles import ResearcherRequiredMixin
from corpora.models import Corpus
from jobs.models import Job

from . import charts, selectors
from .errors import CriticError
from .forms import (
    CriticConfigForm,
    LearnForm,
    PresetExportForm,
    PresetForm,
    TargetPrecisionForm,
    ThresholdForm,
)
from .labels import corpus_labels
from .models import CriticVersion, FilterPreset
from .services.config import critic_config_get, critic_config_update
from .services.embedding import corpus_embed_jobs_create
from .services.learning import learning_campaign_create
from .services.presets import preset_export_job_create, preset_save
from .services.training import critic_activate, critic_train_job_create


def _version(corpus: Corpus, number: int) -> CriticVersion:
    return get_object_or_404(CriticVersion, corpus=corpus, number=number)


def _threshold_context(corpus: Corpus, version: CriticVersion, threshold: float) -> dict:
    report = selectors.threshold_report(corpus=corpus, version=version, threshold=threshold)
    above, below = selectors.triples_near_threshold(corpus=corpus, threshold=report.threshold)
    return {
        "corpus": corpus,
        "version": version,
        "report": report,
        "above": above if report.scored else [],
        "below": below if report.scored else [],
    }


def _samplings_context(curve: list[dict]) -> dict:
    """The learning curve's legend (the samplings its points are coloured by) and its table
    of labels by sampling, in the words of the campaign form."""
    names = dict(Campaign.Sampling.choices)

    def named(counts: dict) -> list[tuple[str, int]]:
        return [(names.get(name, name), n) for name, n in counts.items()]

    shown = {p["sampling"] for p in curve if p["sampling"] and p["roc_auc"] is not None}
    return {
        "learning_legend": [(name, label) for name, label in names.items() if name in shown],
        "learning_rows": [
            {
                "version": p["version"],
                "labels": p["labels"],
                "new": named(p["new_by_sampling"]),
                "all": named(p["by_sampling"]),
            }
            for p in curve
            if p["by_sampling"]
        ],
    }


class DashboardView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest, corpus_pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        config = critic_config_get(corpus=corpus)
        versions = list(selectors.critic_versions(corpus=corpus))
        active = next((v for v in versions if v.is_active), None)
        number = request.GET.get("version")
        shown = next(
            (v for v in versions if str(v.number) == number),
            active or (versions[0] if versions else None),
        )
        curve = selectors.learning_curve(corpus=corpus)
        context = {
            "corpus": corpus,
            "config": config,
            "config_form": CriticConfigForm(instance=config),
            "versions": versions,
            "active": active,
            "shown": shown,
            "scoring": selectors.corpus_scoring(corpus=corpus),
            "presets": selectors.presets(corpus=corpus),
            "export_form": PresetExportForm(),
            "jobs": Job.objects.filter(kind__startswith="critic.", params__corpus_id=corpus.pk)[:5],
            "learning_curve": charts.learning_curve(curve),
            **_samplings_context(curve),
            "labels_now": len(corpus_labels(corpus_id=corpus.pk).learning),
            "learn_form": LearnForm(
                presets=selectors.presets(corpus=corpus),
                initial={"name": f"learn {corpus.name} {len(versions) + 1}"[:100]},
            ),
        }
        if shown:
            start = shown.recall_thresholds.get("rec_80", 0.5)
            context.update(_threshold_context(corpus, shown, start))
            threshold = context["report"].threshold
            curves = (
                ("pr-curve", "Precision and recall", "pr", "recall", "precision"),
                ("roc-curve", "ROC", "roc", "false positive rate", "true positive rate"),
            )
            context["curve_charts"] = [
                {**chart, "id": chart_id, "title": title}
                for chart_id, title, key, x_label, y_label in curves
                if (chart := charts.curve(shown.curves.get(key, []), x_label, y_label, threshold))
            ]
            context["target_form"] = TargetPrecisionForm(
                initial={"version": shown.number, "target": 0.9}, versions=versions
            )
        return render(request, "critic/dashboard.html", context)


class ThresholdView(ResearcherRequiredMixin, View):
    """The slider's fragment: counts from histograms, estimates from labels."""

    def get(self, request: HttpRequest, corpus_pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        form = ThresholdForm(request.GET)
        if not form.is_valid():
            return HttpResponseBadRequest("Give version and threshold (0 to 1).")
        version = _version(corpus, form.cleaned_data["version"])
        response = render(
            request,
            "critic/dashboard.html#threshold-panel",
            _threshold_context(corpus, version, form.cleaned_data["threshold"]),
        )
        patch_vary_headers(response, ["HX-Request"])
        return response


class TargetPrecisionView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest, corpus_pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        form = TargetPrecisionForm(request.GET, versions=selectors.critic_versions(corpus=corpus))
        if not form.is_valid():
            return HttpResponseBadRequest("Give version and a target precision (0 to 1).")
        version = _version(corpus, form.cleaned_data["version"])
        target = form.cleaned_data["target"]
        overall, by_relation = selectors.threshold_for_precision(
            version=version, target=target, per_relation=form.cleaned_data["per_relation"]
        )
        report = None
        if overall is not None:
            report = selectors.threshold_report(
                corpus=corpus, version=version, threshold=overall, relation_thresholds=by_relation
            )
        return render(
            request,
            "critic/dashboard.html#target-result",
            {
                "corpus": corpus,
                "version": version,
                "target": target,
                "overall": overall,
                "by_relation": by_relation,
                "target_report": report,
            },
        )


class TrainView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, corpus_pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        job = critic_train_job_create(corpus=corpus, created_by=request.user)
        messages.success(request, f"Training a new critic version (job {job.pk}).")
        return redirect("critic:dashboard", corpus_pk=corpus.pk)


class LearnView(ResearcherRequiredMixin, View):
    """A learning campaign drawn where labels teach the critic most."""

    def post(self, request: HttpRequest, corpus_pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        form = LearnForm(request.POST, presets=selectors.presets(corpus=corpus))
        if not form.is_valid():
            messages.error(request, f"No campaign created: {form.errors.as_text()}")
            return redirect(reverse("critic:dashboard", args=[corpus.pk]) + "#learn")
        try:
            campaign = learning_campaign_create(
                corpus=corpus, **form.cleaned_data, created_by=request.user
            )
        except AppError as exc:
            messages.error(request, f"No campaign created: {exc}")
            return redirect(reverse("critic:dashboard", args=[corpus.pk]) + "#learn")
        messages.success(
            request,
            f"Learning campaign {campaign.name} created: {campaign.item_count:,} items drawn "
            f"{campaign.get_sampling_display()}.",
        )
        return redirect("annotation:campaign_detail", pk=campaign.pk)


class EmbedView(ResearcherRequiredMixin, View):
    """Fill the embedding cache ahead of training and scoring, in jobs workers share."""

    def post(self, request: HttpRequest, corpus_pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        jobs = corpus_embed_jobs_create(corpus=corpus, created_by=request.user)
        messages.success(
            request, f"Embedding {corpus.triple_count:,} triples in {len(jobs)} job(s)."
        )
        return redirect("critic:dashboard", corpus_pk=corpus.pk)


class ConfigView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, corpus_pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        form = CriticConfigForm(request.POST, instance=critic_config_get(corpus=corpus))
        if not form.is_valid():
            messages.error(request, f"Settings not saved: {form.errors.as_text()}")
            return redirect("critic:dashboard", corpus_pk=corpus.pk)
        try:
            critic_config_update(corpus=corpus, **form.cleaned_data)
        except CriticError as exc:
            messages.error(request, f"Settings not saved: {exc}")
        else:
            messages.success(request, "Critic settings saved.")
        return redirect("critic:dashboard", corpus_pk=corpus.pk)


class ActivateView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, corpus_pk: int, number: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        version = _version(corpus, number)
        try:
            critic_activate(version=version)
        except CriticError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{version.label} is active; the corpus is being rescored.")
        return redirect("critic:dashboard", corpus_pk=corpus.pk)


class PresetSaveView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, corpus_pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        form = PresetForm(request.POST)
        if not form.is_valid():
            messages.error(request, f"Preset not saved: {form.errors.as_text()}")
            return redirect("critic:dashboard", corpus_pk=corpus.pk)
        data = form.cleaned_data
        try:
            preset = preset_save(
                corpus=corpus,
                name=data["name"],
                version=_version(corpus, data["version"]),
                threshold=data["threshold"],
                relation_thresholds=data["relation_thresholds"] or {},
                target_precision=data["target_precision"],
                description=data["description"],
                created_by=request.user,
            )
        except CriticError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Preset '{preset.name}' saved.")
        return redirect("critic:dashboard", corpus_pk=corpus.pk)


class PresetExportView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, corpus_pk: int, preset_pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        preset = get_object_or_404(FilterPreset, corpus=corpus, pk=preset_pk)
        form = PresetExportForm(request.POST)
        if not form.is_valid():
            return HttpResponseBadRequest("Unknown export format.")
        try:
            job = preset_export_job_create(
                preset=preset, fmt=form.cleaned_data["format"], created_by=request.user
            )
        except CriticError as exc:
            messages.error(request, str(exc))
            return redirect("critic:dashboard", corpus_pk=corpus.pk)
        return redirect("jobs:job_detail", pk=job.pk)
