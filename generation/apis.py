"""DRF API for teachers, few-shot pools and generation runs (services: generation.teaching)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.forms import ValidationError as FormValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from core.apis import ResearcherAPIView
from core.limits import bounds
from corpora.models import Corpus, Relation
from jobs.apis import JobOutput, job_response

from .errors import GenerationError
from .forms import ENV_NAME_ERROR, example_lines, head_lines, is_env_name, relation_names
from .limits import RUN_LIMITS
from .ml.http_teacher import TeacherError
from .models import FewShotPool, GenerationRun, Teacher
from .selectors import pools_listed, runs_listed, teachers_listed
from .services.pools import examples_import
from .services.runs import run_create, run_estimate, run_report, run_start
from .services.teachers import teacher_check, teacher_create

TEACHER_FIELDS = [
    "name",
    "backend",
    "base_url",
    "model",
    "endpoint",
    "api_key_env",
    "device",
    "dtype",
    "temperature",
    "top_p",
    "max_tokens",
    "concurrency",
    "timeout",
    "max_answer_mb",
    "give_up_after",
    "prompt_price_per_1k",
    "completion_price_per_1k",
]


class TeacherOutput(serializers.ModelSerializer):
    class Meta:
        model = Teacher
        fields = ["id", *TEACHER_FIELDS, "created_at"]


class TeacherInput(serializers.ModelSerializer):
    """A teacher's settings; the API key stays in the environment (api_key_env names it)."""

    api_key_env = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        help_text="Name of the environment variable holding the API key (never the key).",
    )

    class Meta:
        model = Teacher
        fields = TEACHER_FIELDS

    def validate_api_key_env(self, value: str) -> str:
        if value and not is_env_name(value):
            raise serializers.ValidationError(ENV_NAME_ERROR)
        return value

    def validate(self, attrs: dict) -> dict:
        backend = attrs.get("backend", Teacher.Backend.OPENAI)
        if backend == Teacher.Backend.OPENAI and not attrs.get("base_url"):
            raise serializers.ValidationError({"base_url": "The HTTP backend needs a base URL."})
        return attrs


class TeacherCheckOutput(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Whether the teacher answered.")
    detail = serializers.CharField()


class PoolOutput(serializers.ModelSerializer):
    seed_events = serializers.IntegerField(source="seed_count", read_only=True)
    examples = serializers.IntegerField(source="example_count", read_only=True)

    class Meta:
        model = FewShotPool
        fields = ["id", "name", "description", "seed_events", "examples", "created_at"]


class PoolInput(serializers.ModelSerializer):
    class Meta:
        model = FewShotPool
        fields = ["name", "description"]


class PoolExamplesInput(serializers.Serializer):
    tsv = serializers.CharField(
        trim_whitespace=False,
        help_text="ATOMIC TSV lines: head<TAB>relation<TAB>tail; a head alone is a seed event.",
    )


class PoolExamplesOutput(serializers.Serializer):
    added = serializers.IntegerField(help_text="New examples and seed events.")
    pool = PoolOutput()


class RunEstimateOutput(serializers.Serializer):
    requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost = serializers.FloatField(allow_null=True, help_text="Null when the teacher is unpriced.")


class RunReportOutput(serializers.Serializer):
    batches = serializers.DictField(
        child=serializers.IntegerField(), help_text="Batches by status (pending, done, failed)."
    )
    requests = serializers.IntegerField()
    triples = serializers.IntegerField()
    events = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    dropped = serializers.DictField(child=serializers.IntegerField())
    errors = serializers.IntegerField()


class RunOutput(serializers.ModelSerializer):
    teacher_name = serializers.CharField(source="teacher.name", read_only=True)
    corpus_name = serializers.CharField(source="corpus.name", read_only=True)
    relations = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    job_status = serializers.CharField(source="job.status", read_only=True, allow_null=True)

    class Meta:
        model = GenerationRun
        fields = [
            "id",
            "teacher",
            "teacher_name",
            "pool",
            "corpus",
            "corpus_name",
            "mode",
            "relations",
            "n_per_pair",
            "k_examples",
            "event_prompts",
            "seed",
            "temperature",
            "top_p",
            "max_tokens",
            "job",
            "job_status",
            "requests_done",
            "triples_written",
            "events_written",
            "errors",
            "created_at",
        ]


class RunDetailOutput(RunOutput):
    estimate = serializers.SerializerMethodField()
    report = serializers.SerializerMethodField()

    class Meta(RunOutput.Meta):
        fields = [*RunOutput.Meta.fields, "estimate", "report"]

    @extend_schema_field(RunEstimateOutput)
    def get_estimate(self, run: GenerationRun) -> dict:
        return RunEstimateOutput(run_estimate(run)).data

    @extend_schema_field(RunReportOutput)
    def get_report(self, run: GenerationRun) -> dict:
        return RunReportOutput(run_report(run)).data


class RunCreateInput(serializers.Serializer):
    teacher = serializers.PrimaryKeyRelatedField(queryset=Teacher.objects.all())
    pool = serializers.PrimaryKeyRelatedField(queryset=FewShotPool.objects.all())
    corpus = serializers.CharField(max_length=100, help_text="Output corpus name; created if new.")
    relations = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Relation names; the seven SKD relations when left out.",
    )
    heads = serializers.ListField(
        child=serializers.CharField(trim_whitespace=True), required=False, default=list
    )
    source_corpus = serializers.PrimaryKeyRelatedField(
        queryset=Corpus.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="A corpus whose heads are used (added to `heads`).",
    )
    event_prompts = serializers.IntegerField(
        **bounds(RUN_LIMITS, "event_prompts"),
        default=0,
        help_text="Prompts for new events, whose inferences follow.",
    )
    n_per_pair = serializers.IntegerField(**bounds(RUN_LIMITS, "n_per_pair"), default=5)
    k_examples = serializers.IntegerField(**bounds(RUN_LIMITS, "k_examples"), default=5)
    seed = serializers.IntegerField(**bounds(RUN_LIMITS, "seed"), default=0)
    temperature = serializers.FloatField(
        **bounds(RUN_LIMITS, "temperature"), required=False, allow_null=True, default=None
    )
    top_p = serializers.FloatField(
        **bounds(RUN_LIMITS, "top_p"), required=False, allow_null=True, default=None
    )
    max_tokens = serializers.IntegerField(
        **bounds(RUN_LIMITS, "max_tokens"), required=False, allow_null=True, default=None
    )

    def validate_heads(self, value: list[str]) -> list[str]:
        try:
            return head_lines("\n".join(value))
        except FormValidationError as error:
            raise serializers.ValidationError(error.messages) from None

    def validate(self, attrs: dict) -> dict:
        if "relations" not in attrs:
            attrs["relations"] = list(
                Relation.objects.filter(is_skd=True).values_list("name", flat=True)
            )
        return attrs


def _run_detail(run_id: int) -> GenerationRun:
    return get_object_or_404(runs_listed().prefetch_related("relations"), pk=run_id)


class TeacherListApi(ResearcherAPIView):
    @extend_schema(responses=TeacherOutput(many=True))
    def get(self, request):
        return Response(TeacherOutput(teachers_listed(), many=True).data)

    @extend_schema(request=TeacherInput, responses={201: TeacherOutput})
    def post(self, request):
        data = TeacherInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            teacher = teacher_create(**data.validated_data)
        except DjangoValidationError as exc:
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        return Response(TeacherOutput(teacher).data, status=status.HTTP_201_CREATED)


class TeacherCheckApi(ResearcherAPIView):
    @extend_schema(
        request=None,
        responses=TeacherCheckOutput,
        description="Make one real request of the teacher's endpoint and model (a completion "
        "of one token), so that a wrong key, base URL or model name shows now. A transformers "
        "teacher's tokenizer and config are loaded (its weights are left to the worker). A "
        "teacher that fails is reported with ok=false and the reason.",
    )
    def post(self, request, pk: int):
        teacher = get_object_or_404(Teacher, pk=pk)
        try:
            result = {"ok": True, "detail": teacher_check(teacher)}
        except TeacherError as exc:
            result = {"ok": False, "detail": str(exc)}
        return Response(TeacherCheckOutput(result).data)


class PoolListApi(ResearcherAPIView):
    @extend_schema(responses=PoolOutput(many=True))
    def get(self, request):
        return Response(PoolOutput(pools_listed(), many=True).data)

    @extend_schema(request=PoolInput, responses={201: PoolOutput})
    def post(self, request):
        data = PoolInput(data=request.data)
        data.is_valid(raise_exception=True)
        pool = data.save()
        return Response(
            PoolOutput(pools_listed().get(pk=pool.pk)).data, status=status.HTTP_201_CREATED
        )


class PoolExamplesApi(ResearcherAPIView):
    @extend_schema(request=PoolExamplesInput, responses={201: PoolExamplesOutput})
    def post(self, request, pk: int):
        pool = get_object_or_404(FewShotPool, pk=pk)
        data = PoolExamplesInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            lines = example_lines(
                data.validated_data["tsv"].splitlines(), relations=relation_names()
            )
            added = examples_import(pool=pool, lines=lines)
        except FormValidationError as error:
            return Response({"tsv": error.messages}, status=status.HTTP_400_BAD_REQUEST)
        except GenerationError as exc:
            return Response({"tsv": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        output = {"added": added, "pool": pools_listed().get(pk=pool.pk)}
        return Response(PoolExamplesOutput(output).data, status=status.HTTP_201_CREATED)


class RunListApi(ResearcherAPIView):
    @extend_schema(responses=RunOutput(many=True))
    def get(self, request):
        return Response(RunOutput(runs_listed().prefetch_related("relations"), many=True).data)

    @extend_schema(
        request=RunCreateInput,
        responses={201: RunDetailOutput},
        description="Create a run and its batches (nothing is sent yet); the answer holds "
        "its estimate. Start it with POST /api/runs/{id}/start/.",
    )
    def post(self, request):
        data = RunCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            run = run_create(
                teacher=v["teacher"],
                pool=v["pool"],
                corpus_name=v["corpus"],
                relations=v["relations"],
                heads=v["heads"],
                source_corpus=v["source_corpus"],
                event_prompts=v["event_prompts"],
                n_per_pair=v["n_per_pair"],
                k_examples=v["k_examples"],
                seed=v["seed"],
                temperature=v["temperature"],
                top_p=v["top_p"],
                max_tokens=v["max_tokens"],
                created_by=request.user,
            )
        except TeacherError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(RunDetailOutput(_run_detail(run.pk)).data, status=status.HTTP_201_CREATED)


class RunDetailApi(ResearcherAPIView):
    @extend_schema(responses=RunDetailOutput)
    def get(self, request, pk: int):
        return Response(RunDetailOutput(_run_detail(pk)).data)


class RunStartApi(ResearcherAPIView):
    @extend_schema(
        request=None,
        responses={202: JobOutput},
        description="Queue a job for the run. A run whose job failed or was cancelled, or "
        "that has pending or failed batches, continues where it stopped. 409 when it is "
        "under way or finished.",
    )
    def post(self, request, pk: int):
        run = get_object_or_404(GenerationRun, pk=pk)
        job = run_start(run=run, created_by=request.user)  # refusals: core's handler, 409
        return job_response(request, job, status.HTTP_202_ACCEPTED)
