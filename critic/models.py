from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class CriticConfig(models.Model):
    """How the critic of one corpus is trained: tier, encoder and the retraining rule."""

    class Tier(models.TextChoices):
        FAST = "fast", "fast (cached embeddings + scikit-learn head)"
        CROSS_ENCODER = "cross-encoder", "strong (fine-tuned cross-encoder, GPU queue)"
        STACKED = "stacked", "best of both (both tiers and a stacker when it wins, GPU queue)"

    class LabelWeighting(models.TextChoices):
        HARD = "hard", "hard: every label counts fully"
        WEIGHTED = "weighted", "weighted: each label weighs the probability that it is right"
        SOFT = "soft", "soft: learn the probability of acceptable (Dawid-Skene posterior)"

    corpus = models.OneToOneField(
        "corpora.Corpus", on_delete=models.CASCADE, related_name="critic_config"
    )
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.FAST)
    encoder = models.CharField(
        max_length=300,
        default="all-MiniLM-L6-v2",
        help_text="Encoder for the fast tier, or base model of the cross-encoder: "
        "a local path or a hub id already on this machine.",
    )
    auto_retrain = models.BooleanField(
        default=True, help_text="Train a new version when enough new labels have arrived."
    )
    retrain_every = models.PositiveIntegerField(
        default=settings.CRITIC_RETRAIN_EVERY,
        validators=[MinValueValidator(1)],
        help_text="New aggregated labels that trigger a new version.",
    )
    name_swap = models.BooleanField(
        null=True,
        blank=True,
        default=None,
        help_text="The paper's name swap: read PersonX/PersonY as common first names, "
        "learning each label in several draws and averaging a triple's score over them. "
        "Unset: each tier's default (on for the cross-encoder, where it helps on the proxy "
        "task; off for the fast tier, where it does not).",
    )
    name_draws = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Name draws per label and per scored triple, with the name swap on.",
    )
    label_weighting = models.CharField(
        max_length=8,
        choices=LabelWeighting.choices,
        default=LabelWeighting.SOFT,
        help_text="How a crowd label's certainty counts in training (adjudicated labels "
        "are certain).",
    )

    def __str__(self) -> str:
        return f"critic of {self.corpus}"


class CriticVersion(models.Model):
    """One trained critic: its metrics, its artifact and the labels it learned from."""

    class Status(models.TextChoices):
        READY = "ready"
        FAILED = "failed"

    corpus = models.ForeignKey(
        "corpora.Corpus", on_delete=models.CASCADE, related_name="critic_versions"
    )
    number = models.PositiveIntegerField()
    tier = models.CharField(max_length=16, choices=CriticConfig.Tier.choices)
    encoder = models.CharField(max_length=300)
    encoder_key = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.READY)
    is_active = models.BooleanField(default=False)
    label_count = models.PositiveIntegerField(default=0)
    positive_count = models.PositiveIntegerField(default=0)
    audit_label_count = models.PositiveIntegerField(default=0)
    # Labelled items of learning campaigns when trained, counting a triple again when
    # a newer campaign labels it again: what "N new labels" is measured against.
    label_events = models.PositiveIntegerField(default=0)
    # Held-out quality: k-fold out-of-fold predictions on the training labels
    # (fast tier) or a held-out share (cross-encoder), and the audit labels.
    metrics = models.JSONField(default=dict)
    audit_metrics = models.JSONField(default=dict, blank=True)
    # Thresholds at which the held-out labels keep recall 0.5 ... 0.9 (the SKD
    # release's rec_X flags) and plot points of the PR/ROC curves.
    recall_thresholds = models.JSONField(default=dict)
    curves = models.JSONField(default=dict)
    # Why it was or was not activated, comparing with the version active then.
    decision = models.TextField(blank=True)
    # Names the version's folder in the artifact store (critics/<key>/), so two databases
    # sharing one store, or a corpus id reused after a deletion, never meet on disk.
    artifact_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    artifact = models.CharField(max_length=500, help_text="Relative to the artifact store.")
    checksum = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the artifact's files when saved (core.artifacts); "
        "empty for versions saved before checksums: not verified.",
    )
    labels_file = models.CharField(
        max_length=500, help_text="The label snapshot (triple ids, labels, held-out scores)."
    )
    train_seconds = models.FloatField(default=0.0)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["corpus", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["corpus", "number"], name="critic_version_number"),
            models.UniqueConstraint(
                fields=["corpus"],
                condition=models.Q(is_active=True),
                name="one_active_critic_per_corpus",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.corpus} critic v{self.number}"

    @property
    def label(self) -> str:
        return f"v{self.number}"


class EmbeddingSet(models.Model):
    """The shard set of the embedding cache for one encoder: where its shards live.

    The cache is keyed by the encoder's fingerprint (`critic.ml.encoder.Encoder.key`); the
    folder is named by this row's own key, so two databases sharing one artifact store each
    keep their own set.
    """

    encoder_key = models.CharField(max_length=200, unique=True)
    artifact_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    folder = models.CharField(max_length=500, help_text="Relative to the artifact store.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"embeddings of {self.encoder_key}"


class CorpusScoring(models.Model):
    """Which version scored the corpus's score set in force, and the scores' histogram.

    The histogram (per relation, HISTOGRAM_BINS equal bins over [0, 1]) lets the
    dashboard count the triples kept at any threshold without a scan.
    """

    corpus = models.OneToOneField(
        "corpora.Corpus", on_delete=models.CASCADE, related_name="scoring"
    )
    version = models.ForeignKey(CriticVersion, on_delete=models.CASCADE, related_name="+")
    scored_count = models.BigIntegerField(default=0)
    histogram = models.JSONField(default=dict, help_text="relation name -> counts per bin")
    seconds = models.FloatField(default=0.0)
    scored_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.corpus} scored by v{self.version.number}"


class FilterPreset(models.Model):
    """A saved cut of a corpus: a critic version and threshold(s), used by exports."""

    corpus = models.ForeignKey(
        "corpora.Corpus", on_delete=models.CASCADE, related_name="filter_presets"
    )
    name = models.CharField(max_length=100)
    version = models.ForeignKey(CriticVersion, on_delete=models.PROTECT, related_name="presets")
    threshold = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    relation_thresholds = models.JSONField(
        default=dict, blank=True, help_text="relation name -> threshold, overriding the global one"
    )
    target_precision = models.FloatField(null=True, blank=True)
    description = models.TextField(blank=True)
    # What the dashboard estimated when the preset was saved (for the dataset card).
    estimates = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["corpus", "name"]
        constraints = [
            models.UniqueConstraint(fields=["corpus", "name"], name="preset_name_per_corpus")
        ]

    def __str__(self) -> str:
        return self.name

    def threshold_for(self, relation: str) -> float:
        return float(self.relation_thresholds.get(relation, self.threshold))


class Rescoring(models.Model):
    """A rescoring of a corpus by a version, split into ranges of triple ids
    (`ScoringRange`) that any worker serving its queue takes, each written into one new
    score set; the set is put in force once every range is done, exactly once."""

    class Status(models.TextChoices):
        SCORING = "scoring"
        DONE = "done"
        SUPERSEDED = "superseded"
        FAILED = "failed"

    corpus = models.ForeignKey("corpora.Corpus", on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(CriticVersion, on_delete=models.CASCADE, related_name="+")
    # The job that queued it (and that the last range ends); a retry of that job resumes it.
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    # The new score set being written (corpora.ScoreSet; a plain id, since the set is
    # dropped when the rescoring is superseded).
    score_set_id = models.BigIntegerField()
    queue = models.CharField(max_length=40, default="gpu")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCORING)
    range_count = models.PositiveIntegerField(default=0)
    triples = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "corpus"], name="rescoring_status")]

    def __str__(self) -> str:
        return f"rescoring {self.pk} of {self.corpus_id} ({self.status})"


class ScoringRange(models.Model):
    """Triples `first_id`..`last_id` of a rescoring: a lease with a heartbeat and an attempt
    number. Its scores are written into the set in the same transaction that marks it
    done, so a range's rows exist exactly when it is done, once."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"

    rescoring = models.ForeignKey(Rescoring, on_delete=models.CASCADE, related_name="ranges")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    triples = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    # How many times a worker took it; a message carries the attempt it is for, and only
    # the message for attempt + 1 starts a queued range.
    attempt = models.PositiveIntegerField(default=0)
    owner = models.CharField(max_length=200, blank=True, help_text="host:pid of its worker")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    scored = models.PositiveIntegerField(default=0)
    # relation id -> [[bin, count], ...] (non-empty bins of thresholds.HISTOGRAM_BINS)
    histogram = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(default=0.0)
    done_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why its last attempt failed.")

    class Meta:
        ordering = ["rescoring", "first_id"]
        constraints = [
            models.UniqueConstraint(fields=["rescoring", "first_id"], name="scoring_range_first")
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="scoring_range_lease")]

    def __str__(self) -> str:
        return f"range {self.first_id}..{self.last_id} of rescoring {self.rescoring_id}"
