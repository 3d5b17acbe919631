"""DRF API for jobs: status and progress, retry, the file a job wrote."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.roles import IsResearcher

from .models import Job
from .selectors import JobView, job_file, job_view
from .services import job_retry


class JobOutput(serializers.Serializer):
    id = serializers.IntegerField(source="job.id")
    kind = serializers.CharField(source="job.kind")
    status = serializers.CharField(source="job.status")
    done = serializers.IntegerField()
    total = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(source="job.error")
    result = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField()

    def get_result(self, view: JobView) -> dict:
        hidden = ("traceback", "path", "rejected_path")
        return {k: v for k, v in view.job.result.items() if k not in hidden}

    def get_download(self, view: JobView) -> str | None:
        if view.job.status != Job.Status.SUCCEEDED or job_file(job=view.job) is None:
            return None
        return self.context["request"].build_absolute_uri(f"/api/jobs/{view.job.pk}/download/")


def job_response(request, job: Job, code: int = status.HTTP_200_OK) -> Response:
    return Response(JobOutput(job_view(job=job), context={"request": request}).data, status=code)


class JobDetailApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses=JobOutput)
    def get(self, request, pk: int):
        return job_response(request, get_object_or_404(Job, pk=pk))


class JobRetryApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=None, responses={202: JobOutput})
    def post(self, request, pk: int):
        job = get_object_or_404(Job, pk=pk)
        job = job_retry(job=job)  # a refusal is core's handler's 409
        return job_response(request, job, status.HTTP_202_ACCEPTED)


class JobDownloadApi(APIView):
    """The file a succeeded job wrote (an export, later a model or a dataset card)."""

    permission_classes = [IsResearcher]

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, pk: int):
        job = get_object_or_404(Job, pk=pk, status=Job.Status.SUCCEEDED)
        path = job_file(job=job)
        if path is None:
            raise Http404("This job wrote no file, or the file is gone.")
        return FileResponse(open(path, "rb"), as_attachment=True, filename=path.name)  # noqa: SIM115
