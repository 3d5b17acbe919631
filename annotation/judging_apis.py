"""DRF API for annotators (any signed-in member, session or `Authorization: Token <key>`):
the campaigns open to them, the next item to judge, a judgment, a skip, an undo. What they
are sent is `selectors.ItemView` and their own answer, never critic scores,
log-probabilities, gold status, other people's labels or statistics.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.roles import IsAnnotatorOrResearcher, is_researcher

from . import selectors
from .apis import _errors, refusal_response
from .errors import (
    AnnotationError,
)
from .models import Campaign, JudgmentValue
from .services.judgments import judgment_submit, judgment_undo
from .services.leasing import assignment_next, assignment_skip

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


class UndoneItemOutput(ItemOutput):
    undone_value = serializers.IntegerField(help_text="The answer taken back.")
    undone_flagged = serializers.BooleanField(help_text="Whether it was flagged as offensive.")


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
    next = ItemOutput(
        required=False,
        help_text="With ?next=1: the next item to judge (null when nothing is left), "
        "so a client needs one request per judgment.",
    )


# --- Views: annotators --------------------------------------------------------------


class _JsonOnly(DefaultContentNegotiation):
    """The judging API answers JSON, whatever the Accept header says: no negotiation to
    pay for on every judgment (the researchers' API keeps DRF's browsable pages)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class AnnotatorAPIView(APIView):
    """Annotators (and researchers) judge; what they get back is only ever an ItemView."""

    permission_classes = [IsAuthenticated, IsAnnotatorOrResearcher]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JsonOnly


# The judging path answers with plain dicts shaped as ItemOutput / JudgmentOutput say
# (the serializers document them): building a serializer per request was a tenth of a
# judgment's CPU.
_JUDGMENT_VALUES = frozenset(JudgmentValue.values)  # the enum builds a new list per read


def _datetime(value) -> str:
    """What DRF's DateTimeField writes (ISO 8601 in the current time zone, UTC as "Z"),
    without building its field machinery per value."""
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _item_body(view: selectors.ItemView) -> dict:
    """ItemOutput's representation of an ItemView."""
    return {
        "assignment_id": view.assignment_id,
        "head": view.head,
        "relation": view.relation,
        "tail": view.tail,
        "sentence": view.sentence,
        "guideline": view.guideline,
        "expires_at": _datetime(view.expires_at),
    }


def _judgment_input(data) -> tuple[int, bool]:
    """(value, flagged) of a judgment: the common JSON body read directly, anything else
    through JudgmentInput (its coercions and its 400 answers)."""
    if isinstance(data, dict) and data.keys() <= {"value", "flagged"}:
        value, flagged = data.get("value"), data.get("flagged", False)
        if type(value) is int and value in _JUDGMENT_VALUES and type(flagged) is bool:
            return value, flagged
    parsed = JudgmentInput(data=data)
    parsed.is_valid(raise_exception=True)
    return parsed.validated_data["value"], parsed.validated_data["flagged"]


def _item_response(assignment, code: int = status.HTTP_200_OK) -> Response:
    return Response(_item_body(selectors.item_view(assignment=assignment)), status=code)


class OpenCampaignListApi(AnnotatorAPIView):
    @extend_schema(
        responses=OpenCampaignOutput(many=True),
        description="The open campaigns you are a member of (researchers: every open one).",
    )
    def get(self, request):
        mine = None if is_researcher(request.user) else request.user
        campaigns = selectors.campaigns_open_for_annotators(annotator=mine).order_by("-created_at")
        return Response(OpenCampaignOutput(campaigns, many=True).data)


class AssignmentNextApi(AnnotatorAPIView):
    @extend_schema(
        request=None,
        responses={
            200: ItemOutput,
            204: OpenApiResponse(description="Nothing left for you in this campaign."),
            **_errors(403, 404, 409),
        },
        description="Your live item if you have one, else a newly leased one. Asking again "
        "before answering gives the same item.",
    )
    def post(self, request, pk: int):
        campaign = get_object_or_404(Campaign.objects.defer("stats"), pk=pk)
        try:
            assignment = assignment_next(campaign=campaign, annotator=request.user)
        except AnnotationError as exc:
            return refusal_response(exc)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return _item_response(assignment)


class JudgmentSubmitApi(AnnotatorAPIView):
    @extend_schema(
        request=JudgmentInput,
        responses={
            201: JudgmentOutput,
            200: OpenApiResponse(
                JudgmentOutput, description="Already answered: the first answer stands."
            ),
            **_errors(400, 403, 404, 409),
        },
    )
    def post(self, request, pk: int):
        value, flagged = _judgment_input(request.data)
        try:
            result = judgment_submit(
                assignment_id=pk, annotator=request.user, value=value, flagged=flagged
            )
        except AnnotationError as exc:
            return refusal_response(exc)
        judgment = result.judgment
        body = {
            "assignment_id": pk,
            "value": judgment.value,
            "flagged": judgment.flagged,
            "created_at": _datetime(judgment.created_at),
        }
        if request.query_params.get("next") in {"1", "true"}:
            try:
                following = assignment_next(
                    campaign=judgment.campaign,
                    annotator=request.user,
                    standing=None if result.paused else result.standing,
                )
            except AnnotationError:
                following = None  # paused or closed: the next request says why
            body["next"] = following and _item_body(selectors.item_view(assignment=following))
        return Response(body, status=status.HTTP_201_CREATED if result.created else 200)


class AssignmentSkipApi(AnnotatorAPIView):
    @extend_schema(
        request=None,
        responses={
            204: OpenApiResponse(description="Skipped; the item goes to others, never to you."),
            **_errors(404),
        },
    )
    def post(self, request, pk: int):
        try:
            assignment_skip(assignment_id=pk, annotator=request.user)
        except AnnotationError as exc:
            return refusal_response(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class JudgmentUndoApi(AnnotatorAPIView):
    @extend_schema(
        request=None,
        responses={200: UndoneItemOutput, **_errors(404, 409)},
        description="Take back your last judgment in this campaign while its item still "
        "needs judgments; the item is leased to you again, to answer anew, with the answer "
        "and flag taken back (to show them again).",
    )
    def post(self, request, pk: int):
        campaign = get_object_or_404(Campaign.objects.defer("stats"), pk=pk)
        try:
            assignment = judgment_undo(campaign=campaign, annotator=request.user)
        except AnnotationError as exc:
            return refusal_response(exc)
        data = _item_body(selectors.item_view(assignment=assignment))
        data["undone_value"] = assignment.undone_value
        data["undone_flagged"] = assignment.undone_flagged
        return Response(data)
