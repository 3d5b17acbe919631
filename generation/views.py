"""Pages for teachers, few-shot pools and generation runs (services: generation.teaching)."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views import View

from core.http import wants_fragment
from core.roles import ResearcherRequiredMixin
from corpora.selectors import corpus_list
from jobs.selectors import job_view

from .errors import GenerationError
from .forms import PoolExamplesForm, PoolForm, RunCreateForm, TeacherForm
from .ml.http_teacher import TeacherError
from .models import FewShotExample, FewShotPool, GenerationBatch, GenerationRun, Teacher
from .selectors import pools_listed, runs_listed, teachers_listed
from .services.leases import run_lease_holder
from .services.pools import examples_import
from .services.runs import run_create, run_estimate, run_report, run_start, run_start_refusal
from .services.teachers import teacher_check, teacher_create

EXAMPLES_SHOWN = 100
RUNS_SHOWN = 200
ERRORS_SHOWN = 5
NAV_SECTION = "generation"


def _render(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    return render(request, template, {"nav_section": NAV_SECTION, **context})


# --- Teachers -----------------------------------------------------------------------------


class TeacherListView(ResearcherRequiredMixin, View):
    template_name = "generation/teacher_list.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, TeacherForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = TeacherForm(request.POST)
        if form.is_valid():
            teacher = teacher_create(**form.cleaned_data)
            messages.success(request, f"Teacher {teacher.name} saved. Check that it answers.")
            return redirect("generation:teacher_list")
        return self._render(request, form)

    def _render(self, request: HttpRequest, form: TeacherForm) -> HttpResponse:
        return _render(request, self.template_name, {"teachers": teachers_listed(), "form": form})


class TeacherCheckView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        teacher = get_object_or_404(Teacher, pk=pk)
        try:
            checked = teacher_check(teacher)
        except TeacherError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, checked)
        return redirect("generation:teacher_list")


# --- Few-shot pools -----------------------------------------------------------------------


class PoolListView(ResearcherRequiredMixin, View):
    template_name = "generation/pool_list.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, PoolForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = PoolForm(request.POST)
        if form.is_valid():
            pool = form.save()
            messages.success(request, f"Pool {pool.name} created. Add examples to it.")
            return redirect("generation:pool_detail", pk=pool.pk)
        return self._render(request, form)

    def _render(self, request: HttpRequest, form: PoolForm) -> HttpResponse:
        return _render(request, self.template_name, {"pools": pools_listed(), "form": form})


def _pool_sections(pool: FewShotPool) -> list[dict]:
    """Seed events, then the examples of each relation: the first EXAMPLES_SHOWN of each."""
    counts = (
        pool.examples.values("relation_id", "relation__name")
        .annotate(n=Count("pk"))
        .order_by("relation__name")
    )
    sections = []
    for row in counts:
        examples = (
            pool.examples.filter(relation_id=row["relation_id"])
            if row["relation_id"] is not None
            else pool.examples.filter(relation__isnull=True)
        )
        sections.append(
            {
                "relation": row["relation__name"],
                "count": row["n"],
                "examples": list(examples.order_by("head", "tail")[:EXAMPLES_SHOWN]),
            }
        )
    sections.sort(key=lambda section: section["relation"] is not None)
    return sections


class PoolDetailView(ResearcherRequiredMixin, View):
    template_name = "generation/pool_detail.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        pool = get_object_or_404(FewShotPool, pk=pk)
        return self._render(request, pool, PoolExamplesForm())

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        pool = get_object_or_404(FewShotPool, pk=pk)
        form = PoolExamplesForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                added = examples_import(pool=pool, lines=form.cleaned_data["lines"])
            except GenerationError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{added:,} new examples and seed events added.")
                return redirect("generation:pool_detail", pk=pool.pk)
        return self._render(request, pool, form)

    def _render(self, request: HttpRequest, pool: FewShotPool, form: PoolExamplesForm):
        context = {
            "pool": pool,
            "sections": _pool_sections(pool),
            "shown": EXAMPLES_SHOWN,
            "form": form,
        }
        return _render(request, self.template_name, context)


class PoolExampleDeleteView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int, example_pk: int) -> HttpResponse:
        example = get_object_or_404(FewShotExample, pk=example_pk, pool_id=pk)
        example.delete()
        messages.success(request, f"Removed: {example}.")
        return redirect("generation:pool_detail", pk=pk)


# --- Runs ---------------------------------------------------------------------------------


class RunListView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        context = {"runs": runs_listed()[:RUNS_SHOWN], "shown": RUNS_SHOWN}
        return _render(request, "generation/run_list.html", context)


class RunCreateView(ResearcherRequiredMixin, View):
    template_name = "generation/run_create.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, RunCreateForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = RunCreateForm(request.POST)
        if form.is_valid():
            try:
                run = run_create(**form.run_arguments(), created_by=request.user)
            except (GenerationError, TeacherError) as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Run {run.pk} created; nothing is sent until you start.")
                return redirect("generation:run_detail", pk=run.pk)
        return self._render(request, form)

    def _render(self, request: HttpRequest, form: RunCreateForm) -> HttpResponse:
        context = {
            "form": form,
            "has_teachers": Teacher.objects.exists(),
            "has_pools": FewShotPool.objects.exists(),
            "corpus_names": corpus_list().values_list("name", flat=True),
        }
        return _render(request, self.template_name, context)


def _run_live_context(run: GenerationRun) -> dict:
    report = run_report(run)
    job = run.job
    live = job_view(job=job) if job is not None and job.is_active else None
    batches = report["batches"]
    failed_errors = (
        run.batches.filter(status=GenerationBatch.Status.FAILED)
        .values("error")
        .annotate(n=Count("pk"))
        .order_by("-n")[:ERRORS_SHOWN]
    )
    return {
        "run": run,
        "job": run.job,
        "report": report,
        "estimate": run_estimate(run),
        "batches_done": batches.get(GenerationBatch.Status.DONE, 0),
        "batches_pending": batches.get(GenerationBatch.Status.PENDING, 0),
        "batches_failed": batches.get(GenerationBatch.Status.FAILED, 0),
        "dropped": sorted(run.dropped.items(), key=lambda item: -item[1]),
        "failed_errors": list(failed_errors),
        "can_start": run_start_refusal(run) is None,
        "live": live,
        "executor": run_lease_holder(run),
    }


class RunDetailView(ResearcherRequiredMixin, View):
    template_name = "generation/run_detail.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(runs_listed(), pk=pk)
        context = _run_live_context(run)
        if wants_fragment(request):
            response = render(request, f"{self.template_name}#run-live", context)
        else:
            context["relations"] = list(run.relations.values_list("name", flat=True))
            response = _render(request, self.template_name, context)
        patch_vary_headers(response, ["HX-Request"])
        return response


class RunStartView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(GenerationRun, pk=pk)
        try:
            job = run_start(run=run, created_by=request.user)
        except GenerationError as exc:
            messages.error(request, str(exc))
            return redirect("generation:run_detail", pk=run.pk)
        messages.success(request, f"Run {run.pk} started as job {job.pk}.")
        return redirect("generation:run_detail", pk=run.pk)
