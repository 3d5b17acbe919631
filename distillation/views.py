"""Student pages (researchers): runs with live training progress and the loss curve,
evaluations, the model download, the comparison table and a triple's lineage."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.http import content_disposition_header
from django.views import View

from core.errors import AppError
from core.http import wants_fragment
from core.roles import ResearcherRequiredMixin
from corpora.models import Corpus, Triple
from corpora.selectors import triple_sample
from critic.models import FilterPreset
from jobs.models import Job
from jobs.selectors import job_view
from jobs.services import job_cancel

from . import charts, selectors
from .errors import DistillationError
from .forms import EvaluationForm, EvaluationSendForm, StudentRunForm
from .models import StudentEvaluation, StudentRun
from .services.archives import student_archive, student_archive_name
from .services.evaluations import evaluation_create, evaluation_start
from .services.outputs import evaluation_send_to_annotation
from .services.runs import student_run_create, student_run_start

RUNS_SHOWN = 200
OUTPUTS_SHOWN = 30
NAV_SECTION = "distillation"
SPLIT_NAMES = ("train", "val", "dev", "test")


def _render(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    return render(
        request, template, {"nav_section": NAV_SECTION, "split_names": SPLIT_NAMES, **context}
    )


def _live(request: HttpRequest, template: str, context: dict, job: Job | None) -> HttpResponse:
    """The live fragment for a poll; when its job has just finished, the whole page is
    reloaded instead, so what depends on the outcome (download, forms) appears."""
    response = render(request, template, context)
    if job is None or not job.is_active:
        response["HX-Refresh"] = "true"
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- Runs ------------------------------------------------------------------------


class RunListView(ResearcherRequiredMixin, View):
    template_name = "distillation/run_list.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        initial = {}
        preset = FilterPreset.objects.select_related("corpus").filter(
            pk=_int_or_none(request.GET.get("preset"))
        )
        preset = preset.first()
        if preset is not None:
            initial = {
                "corpus": preset.corpus_id,
                "preset": str(preset.pk),
                "name": f"{preset.corpus.name}-{preset.name}-student"[:100],
            }
        return self._render(request, StudentRunForm(initial=initial), from_preset=preset)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = StudentRunForm(request.POST)
        if form.is_valid():
            try:
                run = student_run_create(**form.run_arguments(), created_by=request.user)
            except DistillationError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                job = student_run_start(run=run, created_by=request.user)
                messages.success(request, f"Run {run.name} created; training is job {job.pk}.")
                return redirect("distillation:run_detail", pk=run.pk)
        return self._render(request, form)

    def _render(self, request: HttpRequest, form: StudentRunForm, from_preset=None) -> HttpResponse:
        context = {
            "runs": selectors.runs_listed()[:RUNS_SHOWN],
            "shown": RUNS_SHOWN,
            "form": form,
            "from_preset": from_preset,
            "corpora": Corpus.objects.filter(student_runs__isnull=False).distinct(),
        }
        return _render(request, self.template_name, context)


def zip_response(run: StudentRun) -> StreamingHttpResponse:
    response = StreamingHttpResponse(student_archive(run=run), content_type="application/zip")
    response["Content-Disposition"] = content_disposition_header(True, student_archive_name(run))
    return response


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _run_live_context(run: StudentRun) -> dict:
    job = run.job
    return {
        "run": run,
        "job": job,
        "progress": job_view(job=job) if job else None,
        "loss_chart": charts.loss_curve(
            run.loss_history, run.total_steps, selectors.run_eval_history(run=run)
        ),
        "can_cancel": bool(
            job
            and (
                job.status == Job.Status.QUEUED
                or (job.status == Job.Status.RUNNING and job.params.get("cancellable"))
            )
        ),
        "can_start": not run.is_trained
        and (job is None or job.status in (Job.Status.FAILED, Job.Status.CANCELLED)),
    }


def _run_page(
    request: HttpRequest, run: StudentRun, form: EvaluationForm | None = None
) -> HttpResponse:
    context = {
        **_run_live_context(run),
        "lineage": selectors.run_lineage(run=run),
        "evaluations": list(selectors.evaluations_of(run=run)),
        "evaluation_form": form or EvaluationForm(),
    }
    return _render(request, "distillation/run_detail.html", context)


class RunDetailView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(selectors.runs_listed(), pk=pk)
        if wants_fragment(request):
            return _live(
                request, "distillation/run_detail.html#run-live", _run_live_context(run), run.job
            )
        response = _run_page(request, run)
        patch_vary_headers(response, ["HX-Request"])
        return response


class RunStartView(ResearcherRequiredMixin, View):
    """Start again a run whose training failed or was cancelled (it resumes from its last
    checkpoint)."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(StudentRun, pk=pk)
        try:
            job = student_run_start(run=run, created_by=request.user)
        except AppError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Training of {run.name} queued (job {job.pk}).")
        return redirect("distillation:run_detail", pk=run.pk)


class RunCancelView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(StudentRun.objects.select_related("job"), pk=pk)
        if run.job is not None and job_cancel(job=run.job):
            messages.success(
                request, f"Training of {run.name} cancelled; start it again to resume."
            )
        else:
            status = run.job.status if run.job else "not started"
            messages.error(request, f"Training of {run.name} cannot be cancelled now ({status}).")
        return redirect("distillation:run_detail", pk=run.pk)


class RunDownloadView(ResearcherRequiredMixin, View):
    """The trained model folder (weights, tokenizer, README.md card) as one zip."""

    def get(self, request: HttpRequest, pk: int) -> StreamingHttpResponse:
        run = get_object_or_404(StudentRun, pk=pk)
        if not run.is_trained:
            raise Http404("This run has not finished training.")
        return zip_response(run)


class EvaluationCreateView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(selectors.runs_listed(), pk=pk)
        form = EvaluationForm(request.POST)
        if form.is_valid():
            try:
                evaluation = evaluation_create(
                    run=run, **form.evaluation_arguments(), created_by=request.user
                )
            except DistillationError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                job = evaluation_start(evaluation=evaluation, created_by=request.user)
                messages.success(request, f"Evaluation {evaluation.pk} queued (job {job.pk}).")
                return redirect("distillation:evaluation_detail", pk=evaluation.pk)
        return _run_page(request, run, form)


# --- Evaluations -----------------------------------------------------------------


def _evaluation_queryset():
    return StudentEvaluation.objects.select_related("run", "corpus", "campaign", "job")


def _evaluation_live_context(evaluation: StudentEvaluation) -> dict:
    job = evaluation.job
    return {
        "evaluation": evaluation,
        "job": job,
        "progress": job_view(job=job) if job else None,
        "can_start": job is None or job.status in (Job.Status.FAILED, Job.Status.CANCELLED),
    }


def _relation_rows(metrics: dict) -> list[dict]:
    critic = (metrics.get("critic") or {}).get("relations") or {}
    return [
        {"relation": name, **values, "critic": critic.get(name)}
        for name, values in (metrics.get("relations") or {}).items()
    ]


def _evaluation_page(
    request: HttpRequest,
    evaluation: StudentEvaluation,
    send_form: EvaluationSendForm | None = None,
) -> HttpResponse:
    context = _evaluation_live_context(evaluation)
    metrics = evaluation.metrics or {}
    context.update(
        {
            "metrics": metrics,
            "overall": metrics.get("overall"),
            "critic": metrics.get("critic"),
            "relation_rows": _relation_rows(metrics),
            "relations": list(evaluation.relations.values_list("name", flat=True)),
            "outputs": triple_sample(corpus=evaluation.corpus, size=OUTPUTS_SHOWN)
            if metrics
            else [],
            "send_form": send_form or EvaluationSendForm(),
            "blind": selectors.blind_comparison(evaluation=evaluation)
            if evaluation.campaign_id
            else None,
        }
    )
    response = _render(request, "distillation/evaluation_detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


class EvaluationDetailView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        evaluation = get_object_or_404(_evaluation_queryset(), pk=pk)
        if wants_fragment(request):
            return _live(
                request,
                "distillation/evaluation_detail.html#evaluation-live",
                _evaluation_live_context(evaluation),
                evaluation.job,
            )
        return _evaluation_page(request, evaluation)


class EvaluationStartView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        evaluation = get_object_or_404(_evaluation_queryset(), pk=pk)
        try:
            job = evaluation_start(evaluation=evaluation, created_by=request.user)
        except AppError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Evaluation {evaluation.pk} queued (job {job.pk}).")
        return redirect("distillation:evaluation_detail", pk=evaluation.pk)


class EvaluationSendView(ResearcherRequiredMixin, View):
    """A blind campaign over the student's outputs (the same one when sent twice)."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        evaluation = get_object_or_404(_evaluation_queryset(), pk=pk)
        already = evaluation.campaign_id is not None
        form = EvaluationSendForm(request.POST)
        if not form.is_valid():
            return _evaluation_page(request, evaluation, form)
        try:
            campaign = evaluation_send_to_annotation(
                evaluation=evaluation, **form.send_arguments(), created_by=request.user
            )
        except DistillationError as exc:
            if exc.field in form.fields:
                form.add_error(exc.field, str(exc))
                return _evaluation_page(request, evaluation, form)
            messages.error(request, str(exc))
            return redirect("distillation:evaluation_detail", pk=evaluation.pk)
        if already:
            messages.info(request, f"Evaluation {evaluation.pk} was already sent.")
        else:
            messages.success(request, f"Campaign {campaign.name} created from the outputs.")
        return redirect("annotation:campaign_detail", pk=campaign.pk)


# --- Comparison and lineage ------------------------------------------------------


class ComparisonView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest, corpus_pk: int) -> HttpResponse:
        corpus = get_object_or_404(Corpus, pk=corpus_pk)
        rows = selectors.comparison(corpus=corpus)
        relations = selectors.comparison_relations(rows)
        table = [
            {"row": row, "cells": [row.relations.get(name) for name in relations]} for row in rows
        ]
        # The same cells turned a quarter: a row per relation, a column per corpus.
        by_relation = [
            {"name": name, "cells": [row.relations.get(name) for row in rows]} for name in relations
        ]
        context = {
            "corpus": corpus,
            "rows": table,
            "relations": relations,
            "relation_rows": by_relation,
            "chart": charts.acceptance_bars(rows),
            "diversity_n": max((row.diversity_n for row in rows), default=0) or None,
            "runs": StudentRun.objects.filter(corpus=corpus),
        }
        return _render(request, "distillation/comparison.html", context)


class TripleLineageView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest, triple_pk: int) -> HttpResponse:
        triple = get_object_or_404(
            Triple.objects.select_related("head", "relation", "corpus"), pk=triple_pk
        )
        context = {"triple": triple, "lineage": selectors.triple_lineage(triple=triple)}
        return _render(request, "distillation/triple_lineage.html", context)
