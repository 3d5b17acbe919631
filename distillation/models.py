from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

# The fields of a run that say how it trains (forms, API and the model card list these).
HYPERPARAMETERS = (
    "epochs",
    "learning_rate",
    "batch_size",
    "grad_accum",
    "max_length",
    "bf16",
    "max_steps",
    "save_every",
    "seed",
    "device",
)


class StudentRun(models.Model):
    """A student fine-tuned on a corpus (whole, or the cut of a filter preset).

    The preset's critic version and thresholds are copied when the run is created, so the
    run's lineage stays true if the preset is saved again later.
    """

    class Architecture(models.TextChoices):
        CAUSAL = "causal", "causal LM (GPT-2 family)"
        SEQ2SEQ = "seq2seq", "sequence-to-sequence (T5, BART)"

    name = models.CharField(max_length=100, unique=True)
    base_model = models.CharField(
        max_length=300, help_text="A local path or a hub id already on this machine."
    )
    architecture = models.CharField(max_length=8, choices=Architecture.choices, blank=True)
    corpus = models.ForeignKey(
        "corpora.Corpus", on_delete=models.PROTECT, related_name="student_runs"
    )
    preset = models.ForeignKey(
        "critic.FilterPreset",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="student_runs",
        help_text="Train on the triples this preset keeps; empty trains on the whole corpus.",
    )
    critic_version = models.ForeignKey(
        "critic.CriticVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="student_runs",
    )
    threshold = models.FloatField(null=True, blank=True)
    relation_thresholds = models.JSONField(default=dict, blank=True)
    train_split = models.CharField(max_length=16, default="train")
    val_split = models.CharField(
        max_length=16, blank=True, help_text="Split for the validation loss; empty for none."
    )
    # Hyperparameters.
    epochs = models.FloatField(default=1.0, validators=[MinValueValidator(0.01)])
    learning_rate = models.FloatField(default=5e-5, validators=[MinValueValidator(0.0)])
    batch_size = models.PositiveIntegerField(default=16, validators=[MinValueValidator(1)])
    grad_accum = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    max_length = models.PositiveIntegerField(
        default=64, validators=[MinValueValidator(8), MaxValueValidator(4096)]
    )
    bf16 = models.BooleanField(default=True, help_text="Used where the device computes bf16.")
    max_steps = models.PositiveIntegerField(
        null=True, blank=True, help_text="Stop after this many steps (overrides epochs)."
    )
    save_every = models.PositiveIntegerField(default=200, validators=[MinValueValidator(1)])
    seed = models.IntegerField(default=0)
    device = models.CharField(max_length=10, default="auto", help_text="auto, cpu or cuda.")
    # What training did (written as it goes and at the end).
    train_examples = models.BigIntegerField(default=0)
    val_examples = models.BigIntegerField(default=0)
    parameters = models.BigIntegerField(default=0)
    steps = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    train_loss = models.FloatField(null=True, blank=True)
    eval_loss = models.FloatField(null=True, blank=True)
    tokens = models.BigIntegerField(default=0)
    tokens_per_second = models.FloatField(null=True, blank=True)
    seconds = models.FloatField(default=0.0)
    precision = models.CharField(max_length=8, blank=True)
    loss_history = models.JSONField(default=list, blank=True, help_text="[[step, loss], ...]")
    # Names the run's folder in the artifact store (students/<key>/), so two databases
    # sharing one store, or a run id reused after a deletion, never meet on disk.
    artifact_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    folder = models.CharField(max_length=500, blank=True, help_text="In the artifact store.")
    checksum = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the trained model's files (core.artifacts), kept when training "
        "ends; empty before, and for runs trained before checksums: not verified.",
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_trained(self) -> bool:
        return self.finished_at is not None

    @property
    def hyperparameters(self) -> dict:
        return {name: getattr(self, name) for name in HYPERPARAMETERS}


class StudentEvaluation(models.Model):
    """The student's tails for held-out heads: a corpus of its own, with measures."""

    class Decoding(models.TextChoices):
        GREEDY = "greedy"
        BEAM = "beam", "beam search"
        SAMPLE = "sample", "sampling"

    run = models.ForeignKey(StudentRun, on_delete=models.CASCADE, related_name="evaluations")
    corpus = models.OneToOneField(
        "corpora.Corpus",
        on_delete=models.PROTECT,
        related_name="student_evaluation",
        help_text="Where the student's outputs are written (origin 'student').",
    )
    heads_split = models.CharField(
        max_length=16, default="test", help_text="Heads of the run's corpus in this split."
    )
    heads = models.TextField(blank=True, help_text="Or a list of heads, one per line.")
    max_heads = models.PositiveIntegerField(default=200, validators=[MinValueValidator(1)])
    relations = models.ManyToManyField("corpora.Relation", blank=True)
    decoding = models.CharField(max_length=8, choices=Decoding.choices, default=Decoding.GREEDY)
    n_per_pair = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    num_beams = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)])
    max_new_tokens = models.PositiveIntegerField(default=24, validators=[MinValueValidator(1)])
    temperature = models.FloatField(default=1.0)
    top_p = models.FloatField(default=0.9)
    seed = models.IntegerField(default=0)
    pairs = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    campaign = models.ForeignKey(
        "annotation.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"evaluation {self.pk} of {self.run}"
