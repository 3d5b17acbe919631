"""The critic over DRF (researchers): versions, training, thresholds, presets, exports."""

from __future__ import annotations

from dataclasses import asdict

from django.core.validators import MaxLengthValidator
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.limits import CAMPAIGN_LIMITS, CAMPAIGN_NAME_MAX
from core.limits import bounds
from core.roles import IsResearcher
from corpora.exporting import EXPORT_FORMATS
from corpora.models import Corpus
from jobs.apis import JobOutput, job_response

from . import selectors
from .errors import CriticError
from .limits import PRESET_LIMITS, PRESET_NAME_MAX
from .models import CriticVersion, FilterPreset
from .services.config import critic_config_get
from .services.learning import LEARNING_SAMPLINGS, learning_campaign_create
from .services.presets import preset_export_job_create, preset_save
from .services.training import critic_train_job_create


class VersionOutput(serializers.ModelSerializer):
    class Meta:
        model = CriticVersion
        fields = [
            "number",
            "tier",
            "encoder",
            "is_active",
            "label_count",
            "positive_count",
            "audit_label_count",
            "metrics",
            "audit_metrics",
            "recall_thresholds",
            "decision",
            "train_seconds",
            "created_at",
            "activated_at",
        ]


class PresetOutput(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number")

    class Meta:
        model = FilterPreset
        fields = [
            "id",
            "name",
            "version",
            "threshold",
            "relation_thresholds",
            "target_precision",
            "description",
            "estimates",
            "created_at",
        ]


class PresetInput(serializers.Serializer):
    name = serializers.CharField(validators=[MaxLengthValidator(PRESET_NAME_MAX)])
    version = serializers.IntegerField(min_value=1)
    threshold = serializers.FloatField(**bounds(PRESET_LIMITS, "threshold"))
    relation_thresholds = serializers.DictField(
        child=serializers.FloatField(**bounds(PRESET_LIMITS, "threshold")),
        required=False,
        default=dict,
    )
    target_precision = serializers.FloatField(
        **bounds(PRESET_LIMITS, "target_precision"), required=False, allow_null=True, default=None
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ThresholdQuery(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False)
    threshold = serializers.FloatField(min_value=0.0, max_value=1.0)


class TargetQuery(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False)
    target = serializers.FloatField(min_value=0.0, max_value=1.0)
    per_relation = serializers.BooleanField(required=False, default=False)


class PresetExportInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=EXPORT_FORMATS, default="jsonl")


def _corpus(pk: int) -> Corpus:
    return get_object_or_404(Corpus, pk=pk)


def _version(corpus: Corpus, number: int | None) -> CriticVersion:
    if number is None:
        active = selectors.active_version(corpus=corpus)
        if active is None:
            raise serializers.ValidationError({"version": "The corpus has no active critic."})
        return active
    return get_object_or_404(CriticVersion, corpus=corpus, number=number)


class CriticDetailApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses={200: VersionOutput(many=True)})
    def get(self, request, corpus_pk: int) -> Response:
        corpus = _corpus(corpus_pk)
        config = critic_config_get(corpus=corpus)
        scoring = selectors.corpus_scoring(corpus=corpus)
        return Response(
            {
                "corpus": corpus.name,
                "config": {
                    "tier": config.tier,
                    "encoder": config.encoder,
                    "auto_retrain": config.auto_retrain,
                    "retrain_every": config.retrain_every,
                    "name_swap": config.name_swap,
                    "name_draws": config.name_draws,
                    "label_weighting": config.label_weighting,
                },
                "scored_by": scoring.version.number if scoring else None,
                "scored_count": scoring.scored_count if scoring else 0,
                "versions": VersionOutput(selectors.critic_versions(corpus=corpus), many=True).data,
                "learning_curve": selectors.learning_curve(corpus=corpus),
            }
        )


class CriticTrainApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=None, responses={202: JobOutput})
    def post(self, request, corpus_pk: int) -> Response:
        job = critic_train_job_create(corpus=_corpus(corpus_pk), created_by=request.user)
        return job_response(request, job, status.HTTP_202_ACCEPTED)


class LearnInput(serializers.Serializer):
    sampling = serializers.ChoiceField(
        choices=LEARNING_SAMPLINGS,
        help_text="near_line: around a preset's threshold(s); disagreement: where the critic "
        "and the crowd's label disagree most.",
    )
    preset = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        help_text="near_line: the filter preset (its name or id) whose line to draw around.",
    )
    name = serializers.CharField(validators=[MaxLengthValidator(CAMPAIGN_NAME_MAX)])
    size = serializers.IntegerField(**bounds(CAMPAIGN_LIMITS, "size"))
    judgments_per_item = serializers.IntegerField(
        **bounds(CAMPAIGN_LIMITS, "judgments_per_item"), default=3
    )
    gold_share = serializers.FloatField(**bounds(CAMPAIGN_LIMITS, "gold_share"), default=0.1)
    seed = serializers.IntegerField(
        **bounds(CAMPAIGN_LIMITS, "seed"), required=False, allow_null=True, default=None
    )


class LearnOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    sampling = serializers.CharField()
    sampling_params = serializers.JSONField()
    purpose = serializers.CharField()
    item_count = serializers.IntegerField()
    gold_count = serializers.IntegerField()


class LearnApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        request=LearnInput,
        responses={201: LearnOutput},
        description="Create a learning campaign drawn near a preset's line or where the critic "
        "and the crowd disagree most; the campaign is at /api/campaigns/<id>/.",
    )
    def post(self, request, corpus_pk: int) -> Response:
        corpus = _corpus(corpus_pk)
        data = LearnInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        preset_ref = v.pop("preset")
        preset = None
        if preset_ref:
            found = FilterPreset.objects.filter(corpus=corpus, name=preset_ref)
            if not found.exists() and str(preset_ref).isdigit():
                found = FilterPreset.objects.filter(corpus=corpus, pk=int(preset_ref))
            preset = found.select_related("version").first()
            if preset is None:
                raise serializers.ValidationError(
                    {"preset": f"No preset {preset_ref!r} on this corpus."}
                )
        campaign = learning_campaign_create(
            corpus=corpus, preset=preset, **v, created_by=request.user
        )
        return Response(LearnOutput(campaign).data, status=status.HTTP_201_CREATED)


class ThresholdApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(parameters=[ThresholdQuery], responses={200: OpenApiTypes.OBJECT})
    def get(self, request, corpus_pk: int) -> Response:
        corpus = _corpus(corpus_pk)
        query = ThresholdQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        version = _version(corpus, query.validated_data.get("version"))
        report = selectors.threshold_report(
            corpus=corpus, version=version, threshold=query.validated_data["threshold"]
        )
        data = asdict(report)
        data["kept_share"] = report.kept_share
        return Response(data)


class TargetPrecisionApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(parameters=[TargetQuery], responses={200: OpenApiTypes.OBJECT})
    def get(self, request, corpus_pk: int) -> Response:
        corpus = _corpus(corpus_pk)
        query = TargetQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        version = _version(corpus, query.validated_data.get("version"))
        overall, by_relation = selectors.threshold_for_precision(
            version=version,
            target=query.validated_data["target"],
            per_relation=query.validated_data["per_relation"],
        )
        return Response(
            {"version": version.number, "threshold": overall, "relation_thresholds": by_relation}
        )


class PresetListApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses={200: PresetOutput(many=True)})
    def get(self, request, corpus_pk: int) -> Response:
        return Response(PresetOutput(selectors.presets(corpus=_corpus(corpus_pk)), many=True).data)

    @extend_schema(request=PresetInput, responses={201: PresetOutput})
    def post(self, request, corpus_pk: int) -> Response:
        corpus = _corpus(corpus_pk)
        data = PresetInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            preset = preset_save(
                corpus=corpus,
                name=v["name"],
                version=_version(corpus, v["version"]),
                threshold=v["threshold"],
                relation_thresholds=v["relation_thresholds"],
                target_precision=v["target_precision"],
                description=v["description"],
                created_by=request.user,
            )
        except CriticError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(PresetOutput(preset).data, status=status.HTTP_201_CREATED)


class PresetExportApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(request=PresetExportInput, responses={202: JobOutput})
    def post(self, request, preset_pk: int) -> Response:
        preset = get_object_or_404(FilterPreset.objects.select_related("corpus"), pk=preset_pk)
        data = PresetExportInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = preset_export_job_create(
                preset=preset, fmt=data.validated_data["format"], created_by=request.user
            )
        except CriticError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return job_response(request, job, status.HTTP_202_ACCEPTED)
