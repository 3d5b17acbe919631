"""Student runs over DRF (researchers): runs (created and started in one call), their
progress and loss curve, lineage and model; evaluations; the comparison table."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from core.apis import ResearcherAPIView
from core.errors import AppError
from core.limits import CHOICE_ERRORS, bounds
from corpora.models import Corpus, Relation
from critic.models import FilterPreset
from generation.forms import head_lines
from jobs.apis import JobOutput, job_response
from jobs.models import Job
from jobs.selectors import job_view
from jobs.services import job_cancel

from . import selectors
from .errors import DistillationError
from .limits import DEVICES, EVALUATION_LIMITS, RUN_LIMITS, SEND_LIMITS, decoding_check
from .models import HYPERPARAMETERS, StudentEvaluation, StudentRun
from .services.evaluations import evaluation_create, evaluation_start
from .services.outputs import DEFAULT_GOLD_SHARE, evaluation_send_to_annotation
from .services.runs import student_run_create, student_run_start
from .views import zip_response


def _job(serializer: serializers.Serializer, job: Job | None) -> dict | None:
    if job is None:
        return None
    return JobOutput(job_view(job=job), context=serializer.context).data


def _errors(exc: DjangoValidationError) -> dict | list:
    return exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}


# --- Runs ------------------------------------------------------------------------


class StudentRunOutput(serializers.ModelSerializer):
    corpus_name = serializers.CharField(source="corpus.name", read_only=True)
    preset_name = serializers.CharField(source="preset.name", read_only=True, allow_null=True)
    critic_version = serializers.IntegerField(
        source="critic_version.number", read_only=True, allow_null=True
    )
    status = serializers.SerializerMethodField()

    class Meta:
        model = StudentRun
        fields = [
            "id",
            "name",
            "corpus",
            "corpus_name",
            "preset",
            "preset_name",
            "critic_version",
            "threshold",
            "base_model",
            "architecture",
            "job",
            "status",
            "steps",
            "total_steps",
            "train_loss",
            "eval_loss",
            "finished_at",
            "created_at",
        ]

    def get_status(self, run: StudentRun) -> str:
        """'trained', the job's status, or 'not started'."""
        if run.is_trained:
            return "trained"
        return run.job.status if run.job_id else "not started"


class StudentRunDetailOutput(StudentRunOutput):
    eval_history = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()

    class Meta(StudentRunOutput.Meta):
        fields = [
            *StudentRunOutput.Meta.fields,
            "relation_thresholds",
            "train_split",
            "val_split",
            *HYPERPARAMETERS,
            "train_examples",
            "val_examples",
            "parameters",
            "tokens",
            "tokens_per_second",
            "seconds",
            "precision",
            "loss_history",
            "eval_history",
            "progress",
            "model",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.ListField()))
    def get_eval_history(self, run: StudentRun) -> list:
        """Validation loss while training: [[step, loss], ...] (the last on the whole set)."""
        return selectors.run_eval_history(run=run)

    @extend_schema_field(JobOutput(allow_null=True))
    def get_progress(self, run: StudentRun) -> dict | None:
        """The training job with its live progress (step, loss, tokens/s, ETA in message)."""
        return _job(self, run.job)

    @extend_schema_field(OpenApiTypes.URI)
    def get_model(self, run: StudentRun) -> str | None:
        """Where to download the trained model (zip), once trained."""
        if not run.is_trained:
            return None
        return self.context["request"].build_absolute_uri(f"/api/students/{run.pk}/model/")


class StudentRunCreateInput(serializers.ModelSerializer):
    """A run on a corpus, or on a preset's cut of it (the preset names its corpus)."""

    corpus = serializers.PrimaryKeyRelatedField(
        queryset=Corpus.objects.all(), required=False, allow_null=True, default=None
    )
    preset = serializers.PrimaryKeyRelatedField(
        queryset=FilterPreset.objects.select_related("corpus"),
        required=False,
        allow_null=True,
        default=None,
    )
    device = serializers.ChoiceField(choices=DEVICES, default="auto", error_messages=CHOICE_ERRORS)
    seed = serializers.IntegerField(default=0, **bounds(RUN_LIMITS, "seed"))

    class Meta:
        model = StudentRun
        fields = [
            "name",
            "corpus",
            "preset",
            "base_model",
            "train_split",
            "val_split",
            *HYPERPARAMETERS,
        ]
        extra_kwargs = {name: bounds(RUN_LIMITS, name) for name in RUN_LIMITS if name != "seed"}

    def validate(self, data: dict) -> dict:
        preset, corpus = data.get("preset"), data.get("corpus")
        if preset is None and corpus is None:
            raise serializers.ValidationError({"corpus": "Give a corpus, or a preset of one."})
        if preset is not None and corpus is None:
            data["corpus"] = preset.corpus
        return data


def _run_or_404(pk: int) -> StudentRun:
    return get_object_or_404(selectors.runs_listed(), pk=pk)


class RunListApi(ResearcherAPIView):
    @extend_schema(responses=StudentRunOutput(many=True))
    def get(self, request):
        return Response(StudentRunOutput(selectors.runs_listed(), many=True).data)

    @extend_schema(
        request=StudentRunCreateInput,
        responses={201: StudentRunDetailOutput},
        description="Create a run (the base model must load offline, the preset must cut "
        "the corpus with the scores it holds) and queue its training.",
    )
    def post(self, request):
        data = StudentRunCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            run = student_run_create(**data.validated_data, created_by=request.user)
        except DistillationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except DjangoValidationError as exc:
            return Response(_errors(exc), status=status.HTTP_400_BAD_REQUEST)
        student_run_start(run=run, created_by=request.user)
        output = StudentRunDetailOutput(_run_or_404(run.pk), context={"request": request})
        return Response(output.data, status=status.HTTP_201_CREATED)


class RunDetailApi(ResearcherAPIView):
    @extend_schema(responses=StudentRunDetailOutput)
    def get(self, request, pk: int):
        return Response(StudentRunDetailOutput(_run_or_404(pk), context={"request": request}).data)


class RunStartApi(ResearcherAPIView):
    @extend_schema(
        request=None,
        responses={202: JobOutput},
        description="Start again a run whose training failed or was cancelled: it resumes "
        "from its last checkpoint (a run already training answers with its job).",
    )
    def post(self, request, pk: int):
        run = _run_or_404(pk)
        try:
            job = student_run_start(run=run, created_by=request.user)
        except AppError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return job_response(request, job, status.HTTP_202_ACCEPTED)


class RunCancelApi(ResearcherAPIView):
    @extend_schema(request=None, responses={202: JobOutput})
    def post(self, request, pk: int):
        run = _run_or_404(pk)
        if run.job is None or not job_cancel(job=run.job):
            state = run.job.status if run.job else "not started"
            return Response(
                {"detail": f"Training of {run.name} cannot be cancelled now ({state})."},
                status=status.HTTP_409_CONFLICT,
            )
        run.job.refresh_from_db()
        return job_response(request, run.job, status.HTTP_202_ACCEPTED)


class RunLineageApi(ResearcherAPIView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        description="From the student back to its data: corpus, teacher runs and pools, "
        "imports, the cut (preset, critic version, thresholds) and the label campaigns.",
    )
    def get(self, request, pk: int):
        return Response(selectors.run_lineage(run=_run_or_404(pk)))


class RunModelApi(ResearcherAPIView):
    """The trained model folder (weights, tokenizer, README.md card) as one zip."""

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        run = _run_or_404(pk)
        if not run.is_trained:
            raise Http404("This run has not finished training.")
        return zip_response(run)


# --- Evaluations -----------------------------------------------------------------


class StudentEvaluationOutput(serializers.ModelSerializer):
    corpus_name = serializers.CharField(source="corpus.name", read_only=True)
    relations = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    heads = serializers.SerializerMethodField()
    job = serializers.SerializerMethodField()

    class Meta:
        model = StudentEvaluation
        fields = [
            "id",
            "run",
            "corpus",
            "corpus_name",
            "heads_split",
            "heads",
            "max_heads",
            "relations",
            "decoding",
            "n_per_pair",
            "num_beams",
            "max_new_tokens",
            "temperature",
            "top_p",
            "seed",
            "pairs",
            "metrics",
            "campaign",
            "job",
            "created_at",
        ]

    def get_heads(self, evaluation: StudentEvaluation) -> list[str]:
        return evaluation.heads.splitlines() if evaluation.heads else []

    @extend_schema_field(JobOutput(allow_null=True))
    def get_job(self, evaluation: StudentEvaluation) -> dict | None:
        return _job(self, evaluation.job)


class StudentEvaluationCreateInput(serializers.Serializer):
    heads_split = serializers.CharField(max_length=16, default="test")
    heads = serializers.ListField(
        child=serializers.CharField(trim_whitespace=True),
        required=False,
        default=list,
        help_text="Heads to generate for; when empty, heads of heads_split of the run corpus.",
    )
    max_heads = serializers.IntegerField(**bounds(EVALUATION_LIMITS, "max_heads"), default=200)
    relations = serializers.SlugRelatedField(
        many=True,
        slug_field="name",
        queryset=Relation.objects.all(),
        required=False,
        default=list,
        help_text="Relation names; when empty, those of the training data.",
    )
    decoding = serializers.ChoiceField(
        choices=StudentEvaluation.Decoding.choices,
        default=StudentEvaluation.Decoding.GREEDY,
        error_messages=CHOICE_ERRORS,
    )
    n_per_pair = serializers.IntegerField(**bounds(EVALUATION_LIMITS, "n_per_pair"), default=1)
    num_beams = serializers.IntegerField(**bounds(EVALUATION_LIMITS, "num_beams"), default=5)
    max_new_tokens = serializers.IntegerField(
        **bounds(EVALUATION_LIMITS, "max_new_tokens"), default=24
    )
    temperature = serializers.FloatField(**bounds(EVALUATION_LIMITS, "temperature"), default=1.0)
    top_p = serializers.FloatField(**bounds(EVALUATION_LIMITS, "top_p"), default=0.9)
    seed = serializers.IntegerField(default=0, **bounds(EVALUATION_LIMITS, "seed"))

    def validate_heads(self, heads: list[str]) -> list[str]:
        from django import forms

        try:
            return head_lines("\n".join(heads))
        except forms.ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate(self, data: dict) -> dict:
        try:
            decoding_check(
                decoding=data["decoding"], temperature=data["temperature"], top_p=data["top_p"]
            )
        except DistillationError as exc:
            raise serializers.ValidationError({exc.field: exc.message}) from None
        return data


def _evaluations():
    return StudentEvaluation.objects.select_related("corpus", "campaign", "job").prefetch_related(
        "relations"
    )


class RunEvaluationsApi(ResearcherAPIView):
    @extend_schema(responses=StudentEvaluationOutput(many=True))
    def get(self, request, pk: int):
        run = _run_or_404(pk)
        evaluations = _evaluations().filter(run=run)
        return Response(
            StudentEvaluationOutput(evaluations, many=True, context={"request": request}).data
        )

    @extend_schema(
        request=StudentEvaluationCreateInput,
        responses={201: StudentEvaluationOutput},
        description="Evaluate a trained run: its tails for held-out heads go into a corpus "
        "of their own, measured and scored by the run corpus's critic. Queued at once.",
    )
    def post(self, request, pk: int):
        run = _run_or_404(pk)
        data = StudentEvaluationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            evaluation = evaluation_create(run=run, **data.validated_data, created_by=request.user)
        except DistillationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except DjangoValidationError as exc:
            return Response(_errors(exc), status=status.HTTP_400_BAD_REQUEST)
        evaluation_start(evaluation=evaluation, created_by=request.user)
        output = StudentEvaluationOutput(
            _evaluations().get(pk=evaluation.pk), context={"request": request}
        )
        return Response(output.data, status=status.HTTP_201_CREATED)


class EvaluationDetailApi(ResearcherAPIView):
    @extend_schema(responses=StudentEvaluationOutput)
    def get(self, request, pk: int):
        evaluation = get_object_or_404(_evaluations(), pk=pk)
        return Response(StudentEvaluationOutput(evaluation, context={"request": request}).data)


class StudentCampaignOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    corpus = serializers.IntegerField(source="corpus_id")
    items = serializers.IntegerField(source="item_count")
    status = serializers.CharField()


class EvaluationSendInput(serializers.Serializer):
    size = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Outputs to judge, stratified by relation; null: all of them.",
        **bounds(SEND_LIMITS, "size"),
    )
    judgments_per_item = serializers.IntegerField(
        default=3, **bounds(SEND_LIMITS, "judgments_per_item")
    )
    gold_share = serializers.FloatField(
        default=DEFAULT_GOLD_SHARE, **bounds(SEND_LIMITS, "gold_share")
    )
    with_teacher = serializers.BooleanField(
        default=True,
        help_text="Mix in as many of the teacher's tails for the same heads and relations.",
    )
    seed = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The same seed draws the same items in the same order.",
        **bounds(SEND_LIMITS, "seed"),
    )


class EvaluationSendApi(ResearcherAPIView):
    @extend_schema(
        request=EvaluationSendInput,
        responses={201: StudentCampaignOutput, 200: StudentCampaignOutput},
        description="A blind campaign over the student's outputs (201): with_teacher mixes "
        "in the teacher's tails for the same heads and relations, shuffled, under a neutral "
        "name and instructions; each item's source is kept for the comparison and never "
        "shown to annotators. Sent before, the same campaign (200).",
    )
    def post(self, request, pk: int):
        evaluation = get_object_or_404(_evaluations(), pk=pk)
        data = EvaluationSendInput(data=request.data)
        data.is_valid(raise_exception=True)
        already = evaluation.campaign_id is not None
        try:
            campaign = evaluation_send_to_annotation(
                evaluation=evaluation, **data.validated_data, created_by=request.user
            )
        except DistillationError as exc:
            if exc.field in EvaluationSendInput().fields:
                return Response({exc.field: [exc.message]}, status=status.HTTP_400_BAD_REQUEST)
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        code = status.HTTP_200_OK if already else status.HTTP_201_CREATED
        return Response(StudentCampaignOutput(campaign).data, status=code)


# --- Comparison ------------------------------------------------------------------


class ComparisonAcceptanceOutput(serializers.Serializer):
    rate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    basis = serializers.CharField(help_text="human (people's labels) or critic (its estimate)")
    n = serializers.IntegerField()


class BlindCellOutput(serializers.Serializer):
    items = serializers.IntegerField(help_text="Items of this source in the cell.")
    judged = serializers.IntegerField(help_text="Of them, labelled (aggregated or adjudicated).")
    accepted = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    too_few = serializers.BooleanField(
        help_text="No label, or the interval is wider than ±10 points."
    )


class BlindRowOutput(serializers.Serializer):
    relation = serializers.CharField(help_text="Empty for all relations.")
    student = BlindCellOutput()
    teacher = BlindCellOutput()


class BlindOutput(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    campaign_name = serializers.CharField()
    overall = BlindRowOutput()
    relations = BlindRowOutput(many=True)
    both = serializers.IntegerField(help_text="Items both wrote, counted for each.")
    aggregated_at = serializers.DateTimeField(allow_null=True)
    stale = serializers.BooleanField(help_text="Judgments came in after the last aggregation.")


class ComparisonRowOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["teacher", "filtered", "student"])
    name = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    acceptance = ComparisonAcceptanceOutput()
    relations = serializers.DictField(child=ComparisonAcceptanceOutput())
    distinct_1 = serializers.FloatField(allow_null=True)
    distinct_2 = serializers.FloatField(allow_null=True)
    diversity_n = serializers.IntegerField(help_text="Tails the distinct-n measures rest on.")
    link = serializers.DictField(child=serializers.IntegerField())
    blind = BlindOutput(
        allow_null=True,
        help_text="A student's blind campaign: people's acceptance per source (student, "
        "teacher) and relation, with the items judged in each cell.",
    )


class ComparisonApi(ResearcherAPIView):
    @extend_schema(
        responses=ComparisonRowOutput(many=True),
        description="The teacher corpus, each cut a student trained on and each evaluated "
        "student: size, acceptance (with 95% interval and basis) overall and by relation, "
        "distinct-1 and distinct-2; for a student sent to annotation blind, people's "
        "acceptance of its items and of the teacher's mixed with them (`blind`).",
    )
    def get(self, request, pk: int):
        corpus = get_object_or_404(Corpus, pk=pk)
        rows = selectors.comparison(corpus=corpus)
        return Response(ComparisonRowOutput(rows, many=True).data)
