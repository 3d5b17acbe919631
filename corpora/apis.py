"""DRF API for corpora, triples, relations, imports and exports (jobs: jobs/apis.py)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxLengthValidator
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from core.apis import ResearcherAPIView
from core.limits import CHOICE_ERRORS, REQUIRED_MESSAGE
from jobs.apis import JobOutput, job_response
from jobs.models import Job

from . import selectors, services
from .exporting import EXPORT_FORMATS, ExportFilter
from .limits import CORPUS_NAME_MAX, IMPORT_FORMATS
from .models import Corpus, Relation
from .uploads import upload_guard, upload_refused, upload_too_large_message


class CorpusOutput(serializers.ModelSerializer):
    class Meta:
        model = Corpus
        fields = [
            "id",
            "name",
            "description",
            "triple_count",
            "occurrence_count",
            "stats",
            "created_at",
        ]


class CorpusCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class RelationOutput(serializers.ModelSerializer):
    class Meta:
        model = Relation
        fields = [
            "id",
            "name",
            "category",
            "description",
            "sentence_template",
            "prompt_template",
            "verbalization",
            "is_builtin",
            "is_skd",
        ]


class RelationCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=40)
    sentence_template = serializers.CharField(max_length=200)
    prompt_template = serializers.CharField(max_length=500)
    verbalization = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    category = serializers.CharField(required=False, allow_blank=True, default="")


class TripleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    head = serializers.CharField(source="head.text")
    relation = serializers.CharField(source="relation.name")
    tail = serializers.CharField()
    split = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    occurrences = serializers.IntegerField()
    origin = serializers.CharField()
    source_fields = serializers.DictField(source="source_fields_dict")


class TripleFilterInput(serializers.Serializer):
    relation = serializers.CharField(required=False)
    split = serializers.CharField(required=False)
    head = serializers.CharField(required=False, help_text="Text the head contains.")
    min_score = serializers.FloatField(required=False)
    max_score = serializers.FloatField(required=False)


class ImportInput(serializers.Serializer):
    file = serializers.FileField(
        help_text="At most IMPORT_MAX_UPLOAD_BYTES (a 413 beyond); .gz is read as it is."
    )
    corpus = serializers.CharField(
        validators=[MaxLengthValidator(CORPUS_NAME_MAX)],
        error_messages={"blank": REQUIRED_MESSAGE},
        help_text="Corpus name; created if new.",
    )
    format = serializers.ChoiceField(
        choices=IMPORT_FORMATS, default="auto", error_messages=CHOICE_ERRORS
    )
    skip_invalid = serializers.BooleanField(default=False)
    drop_none = serializers.BooleanField(
        allow_null=True,
        default=None,
        help_text='Leave out rows whose tail is "none" (ATOMIC\'s "no inference"). '
        "Unset: dropped from ATOMIC TSV, kept from other formats.",
    )


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "upload_too_large"

    def __init__(self) -> None:
        super().__init__(upload_too_large_message())


class ExportInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=EXPORT_FORMATS, default="jsonl")
    relations = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    split = serializers.CharField(required=False, allow_null=True, default=None)
    min_score = serializers.FloatField(required=False, allow_null=True, default=None)

    def validate_relations(self, value: list[str]) -> list[str]:
        known = set(Relation.objects.filter(name__in=value).values_list("name", flat=True))
        unknown = sorted(set(value) - known)
        if unknown:
            raise serializers.ValidationError(f"Unknown relation(s): {', '.join(unknown)}.")
        return value


class CorpusListApi(ResearcherAPIView):
    @extend_schema(responses=CorpusOutput(many=True))
    def get(self, request):
        return Response(CorpusOutput(selectors.corpus_list(), many=True).data)

    @extend_schema(request=CorpusCreateInput, responses={201: CorpusOutput})
    def post(self, request):
        data = CorpusCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            corpus = services.corpus_create(**data.validated_data, created_by=request.user)
        except DjangoValidationError as exc:
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        return Response(CorpusOutput(corpus).data, status=status.HTTP_201_CREATED)


class CorpusDetailApi(ResearcherAPIView):
    @extend_schema(responses=CorpusOutput)
    def get(self, request, pk: int):
        return Response(CorpusOutput(get_object_or_404(Corpus, pk=pk)).data)


class TriplePagination(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class TripleListApi(ResearcherAPIView):
    @extend_schema(parameters=[TripleFilterInput], responses=TripleOutput(many=True))
    def get(self, request, pk: int):
        corpus = get_object_or_404(Corpus, pk=pk)
        params = TripleFilterInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        flt = selectors.TripleFilter(
            relation=p.get("relation"),
            split=p.get("split"),
            head_contains=p.get("head"),
            min_score=p.get("min_score"),
            max_score=p.get("max_score"),
        )
        paginator = TriplePagination()
        page = paginator.paginate_queryset(
            selectors.triple_queryset(corpus=corpus, flt=flt), request, view=self
        )
        return paginator.get_paginated_response(TripleOutput(page, many=True).data)


class RelationListApi(ResearcherAPIView):
    @extend_schema(responses=RelationOutput(many=True))
    def get(self, request):
        return Response(RelationOutput(selectors.relation_list(), many=True).data)

    @extend_schema(request=RelationCreateInput, responses={201: RelationOutput})
    def post(self, request):
        data = RelationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            relation = services.relation_create(**data.validated_data)
        except DjangoValidationError as exc:
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        return Response(RelationOutput(relation).data, status=status.HTTP_201_CREATED)


class ImportApi(ResearcherAPIView):
    parser_classes = [MultiPartParser, FormParser]

    def initial(self, request, *args, **kwargs) -> None:
        # Before anything reads the body (the session's CSRF check does): see uploads.py.
        if not upload_guard(request._request):
            raise UploadTooLarge()
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": ImportInput}, responses={202: JobOutput, 413: None}
    )
    def post(self, request):
        data = ImportInput(data=request.data)
        if upload_refused(request._request):
            raise UploadTooLarge()
        data.is_valid(raise_exception=True)
        v = data.validated_data
        job = services.corpus_import_job_create(
            path=services.upload_save(uploaded=v["file"]),
            corpus_name=v["corpus"],
            fmt=v["format"],
            skip_invalid=v["skip_invalid"],
            drop_none=v["drop_none"],
            created_by=request.user,
        )
        return job_response(request, job, status.HTTP_202_ACCEPTED)


class ImportValidLinesApi(ResearcherAPIView):
    """A failed import job's valid lines, imported by a new job (the job page's "Import
    the valid lines"); 409 when that cannot be (not failed, already done, file gone)."""

    @extend_schema(request=None, responses={202: JobOutput, 409: None})
    def post(self, request, pk: int):
        failed = get_object_or_404(Job, pk=pk, kind=services.IMPORT_JOB)
        try:
            job = services.corpus_import_valid_lines(job=failed, created_by=request.user)
        except services.ImportRetryRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return job_response(request, job, status.HTTP_202_ACCEPTED)


class ExportApi(ResearcherAPIView):
    @extend_schema(request=ExportInput, responses={202: JobOutput})
    def post(self, request, pk: int):
        corpus = get_object_or_404(Corpus, pk=pk)
        data = ExportInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        job = services.corpus_export_job_create(
            corpus=corpus,
            fmt=v["format"],
            out_path=services.export_path_for(corpus=corpus, fmt=v["format"]),
            flt=ExportFilter(
                relations=tuple(v["relations"]), split=v["split"], min_score=v["min_score"]
            ),
            created_by=request.user,
        )
        return job_response(request, job, status.HTTP_202_ACCEPTED)
