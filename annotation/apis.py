"""DRF API for annotation campaigns.

Researchers: list and create campaigns, a campaign's settings, progress and
statistics, aggregation jobs, and the judgments streamed as JSONL or CSV.

Annotators (any signed-in user, session or `Authorization: Token <key>`): the
campaigns open to them, the next item to judge, a judgment, a skip, an undo.
What they are sent is `selectors.ItemView` and their own answer, never critic
scores, log-probabilities, gold status, other people's labels or statistics.
"""

from __future__ import annotations

import re

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import IsResearcher
from generation.models import Corpus
from generation.services import upload_save
from jobs.apis import JobOutput, job_response

from . import exporting, selectors, services
from .models import Campaign, JudgmentValue

# --- Errors -------------------------------------------------------------------

# Most specific first: every refusal of the services is an AnnotationError.
REFUSAL_STATUS: tuple[tuple[type[services.AnnotationError], int], ...] = (
    (services.LeaseRefused, status.HTTP_409_CONFLICT),
    (services.AnnotatorPaused, status.HTTP_403_FORBIDDEN),
    (services.CampaignClosed, status.HTTP_409_CONFLICT),
    (services.AssignmentNotFound, status.HTTP_404_NOT_FOUND),
    (services.NothingToUndo, status.HTTP_409_CONFLICT),
)


def _code(exc: Exception) -> str:
    """LeaseRefused -> lease_refused; a plain AnnotationError -> refused."""
    if type(exc) is services.AnnotationError:
        return "refused"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def refusal_response(exc: services.AnnotationError) -> Response:
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
    403: "Not allowed: a researcher's resource, or your judgments here are paused.",
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
            "seed",
            "judgments_per_item",
            "gold_share",
            "gold_threshold",
            "gold_min_answers",
            "lease_seconds",
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
    name = serializers.CharField(max_length=Campaign._meta.get_field("name").max_length)
    size = serializers.IntegerField(min_value=1, max_value=10_000_000)
    sampling = serializers.ChoiceField(
        choices=Campaign.Sampling.choices, default=Campaign.Sampling.UNIFORM
    )
    judgments_per_item = serializers.IntegerField(min_value=1, max_value=20, default=3)
    gold_share = serializers.FloatField(min_value=0.0, max_value=0.5, default=0.1)
    gold_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.7)
    gold_min_answers = serializers.IntegerField(min_value=1, max_value=1000, default=5)
    lease_seconds = serializers.IntegerField(min_value=10, max_value=24 * 3600, default=600)
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    seed = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0, max_value=2**31 - 1
    )
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


# --- Serializers: annotators ----------------------------------------------------


class OpenCampaignOutput(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["id", "name", "instructions", "lease_seconds"]


class ItemOutput(serializers.Serializer):
    """`selectors.ItemView`: what an annotator is shown, and nothing more."""

    assignment_id = serializers.IntegerField(
        help_text="Send the judgment to /api/assignments/<assignment_id>/judgment/."
    )
    head = serializers.CharField()
    relation = serializers.CharField()
    tail = serializers.CharField()
    sentence = serializers.CharField(help_text="The triple as a sentence for people.")
    guideline = serializers.CharField(help_text="The relation's guideline.")
    expires_at = serializers.DateTimeField(help_text="The item is yours until then.")


class JudgmentInput(serializers.Serializer):
    value = serializers.ChoiceField(
        choices=JudgmentValue.choices,
        help_text="2 always/often, 1 sometimes/likely, -1 farfetched/never, -2 invalid, "
        "-9 can't judge.",
    )
    flagged = serializers.BooleanField(default=False, help_text="Offensive content.")


class JudgmentOutput(serializers.Serializer):
    assignment_id = serializers.IntegerField()
    value = serializers.IntegerField(help_text="The stored answer (the first, on a repeat).")
    flagged = serializers.BooleanField()
    created_at = serializers.DateTimeField()


# --- Views: researchers -------------------------------------------------------------


class ResearcherAPIView(APIView):
    permission_classes = [IsResearcher]


class CampaignListApi(ResearcherAPIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(responses=CampaignOutput(many=True), _("list"))
    def get(self, request):
        return Response(CampaignOutput(selectors.campaign_list(), many=True).data)
