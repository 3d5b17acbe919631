"""DRF API for annotation campaigns.

Researchers: list and create campaigns, a campaign's settings, progress and
statistics, aggregation jobs, and the judgments streamed as JSONL or CSV; the error
shapes every annotation API answers with. The annotators' endpoints are in
`judging_apis`, the review's in `review_apis`.
"""

from __future__ import annotations

import re

from django.core.validators import MaxLengthValidator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core.apis import ResearcherAPIView
from core.limits import CHOICE_ERRORS, bounds
from corpora.models import Corpus
from corpora.services import upload_save
from jobs.apis import JobOutput, job_response

from . import exporting, selectors
from .errors import (
    AnnotationError,
    AnnotatorPaused,
    AssignmentNotFound,
    CampaignClosed,
    LeaseRefused,
    NothingToUndo,
    NotMember,
    TrainingRequired,
)
from .limits import CAMPAIGN_LIMITS, CAMPAIGN_NAME_MAX
from .models import Campaign
from .services.aggregation import campaign_aggregate_job_create
from .services.campaigns import campaign_create

# --- Errors -------------------------------------------------------------------

# Most specific first: every refusal of the services is an AnnotationError.
REFUSAL_STATUS: tuple[tuple[type[AnnotationError], int], ...] = (
    (LeaseRefused, status.HTTP_409_CONFLICT),
    (AnnotatorPaused, status.HTTP_403_FORBIDDEN),
    (NotMember, status.HTTP_403_FORBIDDEN),
    (TrainingRequired, status.HTTP_403_FORBIDDEN),
    (CampaignClosed, status.HTTP_409_CONFLICT),
    (AssignmentNotFound, status.HTTP_404_NOT_FOUND),
    (NothingToUndo, status.HTTP_409_CONFLICT),
)


def _code(exc: Exception) -> str:
    """LeaseRefused -> lease_refused; a plain AnnotationError -> refused."""
    if type(exc) is AnnotationError:
        return "refused"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def refusal_response(exc: AnnotationError) -> Response:
    """A service's refusal as an HTTP answer: its message in `detail`, its kind in `code`."""
    code = next(
        (code for kind, code in REFUSAL_STATUS if isinstance(exc, kind)),
        status.HTTP_400_BAD_REQUEST,
    )
    return Response({"detail": str(exc), "code": _code(exc)}, status=code)


class ErrorOutput(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)


_ERROR_TEXT = {
    400: "The request breaks a rule (a value off the scale, a duplicate name, ...).",
    403: "Not allowed: a researcher's resource, a campaign you are not a member of, or "
    "your judgments here are paused.",
    404: "No such campaign, or that item was not given to you.",
    409: "A conflict: the campaign is closed, the lease was taken over, nothing to undo.",
}


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorOutput, description=_ERROR_TEXT[code]) for code in codes}


# --- Serializers: researchers ---------------------------------------------------


class CorpusRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CampaignOutput(serializers.ModelSerializer):
    corpus = CorpusRefOutput()
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "corpus",
            "status",
            "sampling",
            "sampling_params",
            "purpose",
            "seed",
            "judgments_per_item",
            "gold_share",
            "gold_threshold",
            "gold_min_answers",
            "lease_seconds",
            "items_per_session",
            "training_size",
            "qualification_threshold",
            "training_tries",
            "straight_line_run",
            "speed_floor",
            "instructions",
            "item_count",
            "gold_count",
            "created_by",
            "created_at",
            "aggregated_at",
        ]


class ProgressOutput(serializers.Serializer):
    items = serializers.IntegerField()
    gold = serializers.IntegerField()
    judgments_wanted = serializers.IntegerField()
    judgments = serializers.IntegerField()
    items_complete = serializers.IntegerField()
    live_leases = serializers.IntegerField()
    annotators = serializers.IntegerField()
    flagged = serializers.IntegerField()
    percent = serializers.FloatField()


class CampaignDetailOutput(CampaignOutput):
    progress = serializers.SerializerMethodField()
    stats = serializers.JSONField(
        help_text="What the last aggregation found: agreement, acceptance (overall and per "
        "relation), the annotator table. Empty until the campaign is aggregated."
    )

    class Meta(CampaignOutput.Meta):
        fields = [*CampaignOutput.Meta.fields, "progress", "stats"]

    @extend_schema_field(ProgressOutput)
    def get_progress(self, campaign: Campaign) -> dict:
        return ProgressOutput(selectors.campaign_progress(campaign=campaign)).data


class CampaignCreateInput(serializers.Serializer):
    corpus = serializers.CharField(help_text="The corpus to sample from: its id or its name.")
    name = serializers.CharField(validators=[MaxLengthValidator(CAMPAIGN_NAME_MAX)])
    size = serializers.IntegerField(**bounds(CAMPAIGN_LIMITS, "size"))
    sampling = serializers.ChoiceField(
        choices=Campaign.Sampling.choices,
        default=Campaign.Sampling.UNIFORM,
        error_messages=CHOICE_ERRORS,
    )
    purpose = serializers.ChoiceField(
        choices=Campaign.Purpose.choices,
        default=Campaign.Purpose.LEARNING,
        error_messages=CHOICE_ERRORS,
    )
    judgments_per_item = serializers.IntegerField(
        **bounds(CAMPAIGN_LIMITS, "judgments_per_item"), default=3
    )
    gold_share = serializers.FloatField(**bounds(CAMPAIGN_LIMITS, "gold_share"), default=0.1)
    gold_threshold = serializers.FloatField(
        **bounds(CAMPAIGN_LIMITS, "gold_threshold"), default=0.7
    )
    gold_min_answers = serializers.IntegerField(
        **bounds(CAMPAIGN_LIMITS, "gold_min_answers"), default=5
    )
    lease_seconds = serializers.IntegerField(
        **bounds(CAMPAIGN_LIMITS, "lease_seconds"), default=600
    )
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    seed = serializers.IntegerField(
        required=False, allow_null=True, default=None, **bounds(CAMPAIGN_LIMITS, "seed")
    )
    items_per_session = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        **bounds(CAMPAIGN_LIMITS, "items_per_session"),
        help_text="Judgments per session of a join link's annotator (null: no sessions).",
    )
    training_size = serializers.IntegerField(
        **bounds(CAMPAIGN_LIMITS, "training_size"),
        default=0,
        help_text="Gold items each newcomer answers first, shown the expected answer.",
    )
    qualification_threshold = serializers.FloatField(
        **bounds(CAMPAIGN_LIMITS, "qualification_threshold"), default=0.8
    )
    training_tries = serializers.IntegerField(
        **bounds(CAMPAIGN_LIMITS, "training_tries"), default=2
    )
    straight_line_run = serializers.IntegerField(
        **bounds(CAMPAIGN_LIMITS, "straight_line_run"), default=15
    )
    speed_floor = serializers.FloatField(**bounds(CAMPAIGN_LIMITS, "speed_floor"), default=0.25)
    gold_reference = serializers.FileField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Human-written triples (ATOMIC TSV, JSONL, ...) for known-good gold items; "
        "send the request as multipart/form-data to attach it.",
    )

    def validate_corpus(self, value: str) -> Corpus:
        corpus = Corpus.objects.filter(name=value).first()
        if corpus is None and value.isdigit():
            corpus = Corpus.objects.filter(pk=int(value)).first()
        if corpus is None:
            raise serializers.ValidationError(f"No corpus with the id or name {value!r}.")
        return corpus


class ExportQueryInput(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=("raw", "aggregated"),
        default="raw",
        help_text="raw: one row per judgment; aggregated: one row per item with its labels.",
    )
    format = serializers.ChoiceField(choices=exporting.FORMATS, default="jsonl")


# --- Views: researchers -------------------------------------------------------------


class CampaignListApi(ResearcherAPIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(responses={200: CampaignOutput(many=True), **_errors(403)})
    def get(self, request):
        return Response(CampaignOutput(selectors.campaign_list(), many=True).data)

    @extend_schema(
        request={
            "application/json": CampaignCreateInput,
            "multipart/form-data": CampaignCreateInput,
        },
        responses={201: CampaignDetailOutput, **_errors(400, 403)},
        description="Sample the items (and gold) while the request waits: about 100,000 "
        "items take seconds; for millions prefer `manage.py create_campaign`.",
    )
    def post(self, request):
        data = CampaignCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        reference = v.pop("gold_reference")
        try:
            campaign = campaign_create(
                **v,
                gold_reference=upload_save(uploaded=reference) if reference else None,
                created_by=request.user,
            )
        except AnnotationError as exc:
            return refusal_response(exc)
        return Response(CampaignDetailOutput(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailApi(ResearcherAPIView):
    @extend_schema(responses={200: CampaignDetailOutput, **_errors(403, 404)})
    def get(self, request, pk: int):
        campaign = get_object_or_404(Campaign.objects.select_related("corpus", "created_by"), pk=pk)
        return Response(CampaignDetailOutput(campaign).data)


class CampaignAggregateApi(ResearcherAPIView):
    @extend_schema(
        request=None,
        responses={202: JobOutput, **_errors(403, 404)},
        description="Queue an aggregation (majority and Dawid-Skene labels, agreement, "
        "acceptance); follow the job at /api/jobs/<id>/ (the Location header). A campaign "
        "already waiting for one gets that job back.",
    )
    def post(self, request, pk: int):
        campaign = get_object_or_404(Campaign, pk=pk)
        job = campaign_aggregate_job_create(campaign=campaign, created_by=request.user)
        response = job_response(request, job, status.HTTP_202_ACCEPTED)
        response["Location"] = request.build_absolute_uri(f"/api/jobs/{job.pk}/")
        return response


class _ExportNegotiation(BaseContentNegotiation):
    """Here `?format=` names the export's file format, not a DRF renderer (DRF would
    answer 404 for `format=csv`); refusals are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


class CampaignJudgmentsApi(ResearcherAPIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _ExportNegotiation

    @extend_schema(
        parameters=[ExportQueryInput],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (200, "text/csv"): OpenApiTypes.STR,
            **_errors(400, 403, 404),
        },
        description="Streamed: raw judgments (one per line or row) or, with "
        "`kind=aggregated`, one row per item with its labels as of the last aggregation.",
    )
    def get(self, request, pk: int):
        campaign = get_object_or_404(Campaign, pk=pk)
        query = ExportQueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        kind, fmt = query.validated_data["kind"], query.validated_data["format"]
        chunks = exporting.judgment_export_chunks(
            campaign=campaign, fmt=fmt, aggregated=kind == "aggregated"
        )
        response = StreamingHttpResponse(chunks, content_type=EXPORT_TYPES[fmt])
        filename = f"{slugify(campaign.name) or 'campaign'}-{kind}.{fmt}"
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response
