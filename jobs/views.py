"""Job pages: recent jobs, one job's live status (polled by htmx), its files."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import select_template
from django.utils.cache import patch_vary_headers
from django.views import View

from core.http import wants_fragment
from core.roles import ResearcherRequiredMixin

from .models import Job
from .selectors import (
    HIDDEN_RESULT_KEYS,
    display_rows,
    job_file,
    job_queue_wait,
    job_view,
    jobs_recent,
    workers_recent,
)
from .services import JobRefused, job_cancel, job_retry

RECENT_JOBS = 50
GENERIC_RESULT = "jobs/results/generic.html"


def _result_template(job: Job) -> str | None:
    """What the job page shows of a job's result: the template named for its kind when
    there is one (it may also show a failure), else the generic one for a success."""
    template = select_template([f"jobs/results/{job.kind}.html", GENERIC_RESULT])
    if template.template.name != GENERIC_RESULT:
        return template.template.name
    return GENERIC_RESULT if job.status == Job.Status.SUCCEEDED else None


def _job_file_or_404(job: Job, key: str) -> Path:
    path = job_file(job=job, key=key)
    if path is None:
        raise Http404("This job wrote no such file, or the file is gone.")
    return path


class JobListView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        context = {"jobs": jobs_recent(limit=RECENT_JOBS), "workers": workers_recent()}
        return render(request, "jobs/job_list.html", context)


class JobDetailView(ResearcherRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_object_or_404(Job, pk=pk)
        context = {
            "job": job,
            "progress": job_view(job=job),
            "wait": job_queue_wait(job=job) if job.status == Job.Status.QUEUED else None,
            "param_rows": display_rows(job.params),
            "result_rows": display_rows(job.result, hidden=HIDDEN_RESULT_KEYS),
            "result_template": _result_template(job)
            if job.status in (Job.Status.SUCCEEDED, Job.Status.FAILED)
            else None,
        }
        # htmx polls the status block alone.
        template = (
            "jobs/job_detail.html#job-status" if wants_fragment(request) else "jobs/job_detail.html"
        )
        response = render(request, template, context)
        patch_vary_headers(response, ["HX-Request"])
        return response


class JobDownloadView(ResearcherRequiredMixin, View):
    """The file a succeeded job wrote (an export, for now)."""

    def get(self, request: HttpRequest, pk: int) -> FileResponse:
        job = get_object_or_404(Job, pk=pk, status=Job.Status.SUCCEEDED)
        path = _job_file_or_404(job, "path")
        return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name)  # noqa: SIM115


class JobCardView(ResearcherRequiredMixin, View):
    """The dataset card written beside a filtered (critic preset) export."""

    def get(self, request: HttpRequest, pk: int) -> FileResponse:
        job = get_object_or_404(Job, pk=pk, status=Job.Status.SUCCEEDED)
        path = _job_file_or_404(job, "card")
        # A download named as the export (demo.card.md beside demo.jsonl), as Markdown.
        return FileResponse(
            open(path, "rb"),  # noqa: SIM115
            as_attachment=True,
            filename=path.name,
            content_type="text/markdown; charset=utf-8",
        )


class JobRejectedView(ResearcherRequiredMixin, View):
    """The rejected lines, with reasons, of an import run with skip_invalid."""

    def get(self, request: HttpRequest, pk: int) -> FileResponse:
        job = get_object_or_404(Job, pk=pk)
        path = _job_file_or_404(job, "rejected_path")
        return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name)  # noqa: SIM115


class JobCancelView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_object_or_404(Job, pk=pk)
        if job_cancel(job=job):
            messages.success(request, f"Job {job.pk} cancelled.")
        else:
            messages.error(request, f"Job {job.pk} cannot be cancelled now ({job.status}).")
        return redirect("jobs:job_detail", pk=job.pk)


class JobRetryView(ResearcherRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_object_or_404(Job, pk=pk)
        try:
            job_retry(job=job)
        except JobRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Job {job.pk} queued again.")
        return redirect("jobs:job_detail", pk=job.pk)
