"""DRF API for reviewing a campaign and adjudicating its items (researchers).

- ``GET /api/campaigns/<id>/review/?filter=…&adjudicated=…&page=…``: the campaign's items
  with every answer, the crowd's label, the critic's score and the adjudication, filtered
  as on the review page (`annotation.review`), a page at a time.
- ``POST /api/items/<id>/adjudication/`` ``{"value": 2}`` sets an item's final label,
  ``{"value": null}`` clears it; the answer is the item as the review lists it.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from core.apis import ResearcherAPIView
from core.limits import CHOICE_ERRORS, bounds
from core.pagination import COUNT_CAP, CappedCountPaginator

from .apis import ErrorOutput
from .models import Campaign, Item, JudgmentValue
from .review import (
    ADJUDICATED,
    FILTERS,
    PAGE_SIZE,
    REVIEW_LIMITS,
    ReviewFilter,
    ReviewRow,
    review_items,
    review_row,
    review_rows,
)
from .services.adjudication import item_adjudicate

_DEFAULTS = ReviewFilter()


def _errors(described: dict[int, str]) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(ErrorOutput, description=text) for code, text in described.items()
    }


class ReviewQueryInput(serializers.Serializer):
    filter = serializers.ChoiceField(
        choices=list(FILTERS.items()),
        required=False,
        allow_blank=True,
        default="",
        error_messages=CHOICE_ERRORS,
        help_text="disagreement, low_agreement, flagged, gold_missed or critic_disagrees; "
        "empty: every item.",
    )
    adjudicated = serializers.ChoiceField(
        choices=list(ADJUDICATED.items()),
        required=False,
        allow_blank=True,
        default="",
        error_messages=CHOICE_ERRORS,
        help_text="yes: adjudicated items only; no: not yet adjudicated; empty: both.",
    )
    agreement_below = serializers.FloatField(
        **bounds(REVIEW_LIMITS, "agreement_below"),
        default=_DEFAULTS.agreement_below,
        help_text="low_agreement: the majority's share of the votes is below this.",
    )
    critic_high = serializers.FloatField(
        **bounds(REVIEW_LIMITS, "critic_high"),
        default=_DEFAULTS.critic_high,
        help_text="critic_disagrees: a score at least this against a crowd that rejects.",
    )
    critic_low = serializers.FloatField(
        **bounds(REVIEW_LIMITS, "critic_low"),
        default=_DEFAULTS.critic_low,
        help_text="critic_disagrees: a score at most this against a crowd that accepts.",
    )
    page = serializers.IntegerField(min_value=1, required=False)


class AnswerOutput(serializers.Serializer):
    annotator = serializers.CharField()
    value = serializers.IntegerField()
    flagged = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    seconds = serializers.FloatField(allow_null=True, help_text="Time taken, lease to submit.")
    excluded = serializers.BooleanField(
        help_text="A paused annotator's answer, left out of the crowd's label."
    )


class ReviewItemOutput(serializers.Serializer):
    id = serializers.IntegerField(source="item.pk")
    triple = serializers.IntegerField(source="item.triple_id", allow_null=True)
    head = serializers.CharField(source="item.head.text")
    relation = serializers.CharField(source="item.relation.name")
    tail = serializers.CharField(source="item.tail")
    sentence = serializers.CharField()
    is_gold = serializers.BooleanField(source="item.is_gold")
    gold_acceptable = serializers.BooleanField(source="item.gold_acceptable", allow_null=True)
    judgments = serializers.IntegerField(source="item.judgment_count")
    answers = AnswerOutput(many=True)
    majority = serializers.BooleanField(source="item.majority", allow_null=True)
    majority_confidence = serializers.FloatField(source="item.majority_confidence", allow_null=True)
    ds_label = serializers.BooleanField(source="item.ds_label", allow_null=True)
    ds_confidence = serializers.FloatField(source="item.ds_confidence", allow_null=True)
    critic_score = serializers.FloatField(allow_null=True)
    adjudicated_value = serializers.IntegerField(source="item.adjudicated_value", allow_null=True)
    adjudicated_by = serializers.CharField(
        source="item.adjudicated_by.username", allow_null=True, default=None
    )
    adjudicated_at = serializers.DateTimeField(source="item.adjudicated_at", allow_null=True)
    label = serializers.BooleanField(
        source="label_used.label",
        allow_null=True,
        help_text="The label used: the adjudicated value when set, else the crowd's.",
    )
    label_source = serializers.CharField(
        source="label_used.source", help_text="adjudicated, dawid_skene, majority or empty."
    )
    label_confidence = serializers.FloatField(source="label_used.confidence", allow_null=True)


class ReviewPageOutput(serializers.Serializer):
    count = serializers.IntegerField(help_text=f"Matching items, counted up to {COUNT_CAP:,}.")
    count_capped = serializers.BooleanField(help_text="True when counting stopped at the cap.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ReviewItemOutput(many=True)


class ReviewPagination(PageNumberPagination):
    page_size = PAGE_SIZE
    django_paginator_class = CappedCountPaginator


class CampaignReviewApi(ResearcherAPIView):
    @extend_schema(
        parameters=[ReviewQueryInput],
        responses={
            200: ReviewPageOutput,
            **_errors(
                {
                    400: "A filter off its choices or a threshold off its bounds.",
                    403: "For researchers.",
                    404: "No such campaign, or no such page.",
                }
            ),
        },
        description="The campaign's items (gold too, in id order) with every individual "
        "answer, the crowd's label, the critic's score and the adjudication, filtered as on "
        "the review page.",
    )
    def get(self, request, pk: int):
        campaign = get_object_or_404(Campaign, pk=pk)
        query = ReviewQueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        v = query.validated_data
        flt = ReviewFilter(
            kind=v["filter"],
            adjudicated=v["adjudicated"],
            agreement_below=v["agreement_below"],
            critic_high=v["critic_high"],
            critic_low=v["critic_low"],
        )
        items = review_items(campaign=campaign, flt=flt)
        pagination = ReviewPagination()
        page = pagination.paginate_queryset(items, request, view=self)
        rows = review_rows(campaign=campaign, items=list(page))
        count = pagination.page.paginator.count
        return Response(
            ReviewPageOutput(
                {
                    "count": count,
                    "count_capped": count >= COUNT_CAP,
                    "next": pagination.get_next_link(),
                    "previous": pagination.get_previous_link(),
                    "results": rows,
                }
            ).data
        )


class AdjudicationInput(serializers.Serializer):
    value = serializers.ChoiceField(
        choices=JudgmentValue.choices,
        allow_null=True,
        error_messages=CHOICE_ERRORS,
        help_text="The final label on the judgment scale (2, 1, -1, -2, -9: no label); "
        "null clears it and the crowd's label is used again.",
    )


class ItemAdjudicationApi(ResearcherAPIView):
    @extend_schema(
        request=AdjudicationInput,
        responses={
            200: ReviewItemOutput,
            **_errors(
                {
                    400: "A value off the scale, or a gold item.",
                    403: "For researchers.",
                    404: "No such item.",
                }
            ),
        },
        description="Set (or clear, with null) an item's final label. It takes precedence "
        "over the crowd's in the campaign's acceptance, the aggregated export and the "
        "critic's training labels; who and when are recorded. Queues an aggregation.",
    )
    def post(self, request, pk: int):
        item = get_object_or_404(Item.objects.select_related("campaign"), pk=pk)
        data = AdjudicationInput(data=request.data)
        data.is_valid(raise_exception=True)
        item_adjudicate(item=item, value=data.validated_data["value"], by=request.user)
        row: ReviewRow = review_row(item=item)
        return Response(ReviewItemOutput(row).data)
