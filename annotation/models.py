from __future__ import annotations

from typing import NamedTuple

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class JudgmentValue(models.IntegerChoices):
    """The four-point scale of the paper, plus "can't judge"."""

    ALWAYS = 2, "always/often"
    SOMETIMES = 1, "sometimes/likely"
    FARFETCHED = -1, "farfetched/never"
    INVALID = -2, "invalid"
    CANT_JUDGE = -9, "can't judge"


class Campaign(models.Model):
    class Sampling(models.TextChoices):
        UNIFORM = "uniform", "uniform"
        RELATION = "relation", "stratified by relation"
        SCORE = "score", "stratified by critic score"
        RELATION_SCORE = "relation_score", "stratified by relation and critic score"
        UNCERTAIN = "uncertain", "most uncertain first"
        NEAR_LINE = "near_line", "near a filter preset's threshold"
        DISAGREEMENT = "disagreement", "where the critic and the crowd disagree most"

    class Purpose(models.TextChoices):
        LEARNING = "learning", "labels for the critic to learn from"
        AUDIT = "audit", "an audit sample for unbiased precision and acceptance"

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    name = models.CharField(max_length=100, unique=True)
    corpus = models.ForeignKey("corpora.Corpus", on_delete=models.PROTECT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    sampling = models.CharField(max_length=16, choices=Sampling.choices, default=Sampling.UNIFORM)
    purpose = models.CharField(
        max_length=8,
        choices=Purpose.choices,
        default=Purpose.LEARNING,
        help_text="Audit labels are kept out of critic training and measure it without bias.",
    )
    # What a sampling needs beyond its name: near-the-line's thresholds ("threshold", per
    # relation "relation_thresholds", the "preset" they came from, the "bandwidth").
    sampling_params = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=0)
    judgments_per_item = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    gold_share = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Share of the items an annotator is shown that are gold.",
    )
    gold_threshold = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="An annotator whose gold accuracy falls below this is paused.",
    )
    gold_min_answers = models.PositiveSmallIntegerField(
        default=5, help_text="Gold answers needed before an annotator can be paused."
    )
    lease_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(10), MaxValueValidator(24 * 3600)]
    )
    instructions = models.TextField(blank=True)
    # Crowd studies: sessions, training and honesty checks.
    items_per_session = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="After this many judgments an annotator from a join link gets the "
        "completion code. Empty: no sessions.",
    )
    training_size = models.PositiveSmallIntegerField(
        default=0,
        db_default=0,
        validators=[MaxValueValidator(50)],
        help_text="Gold items each newcomer answers first, shown the expected answer and its "
        "reason after each. 0: no training.",
    )
    qualification_threshold = models.FloatField(
        default=0.8,
        db_default=0.8,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of training answers that must be right before real items.",
    )
    training_tries = models.PositiveSmallIntegerField(
        default=2,
        db_default=2,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Rounds of training a newcomer may take before they are turned away.",
    )
    straight_line_run = models.PositiveSmallIntegerField(
        default=15,
        db_default=15,
        validators=[MinValueValidator(5), MaxValueValidator(1000)],
        help_text="An annotator who gives the same answer this many times in a row is paused.",
    )
    speed_floor = models.FloatField(
        default=0.25,
        db_default=0.25,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="An annotator whose median time per judgment is below this share of the "
        "crowd's median is paused. 0: never.",
    )
    # Denormalized: the list and detail pages must not count a million items.
    item_count = models.PositiveIntegerField(default=0)
    gold_count = models.PositiveIntegerField(default=0)
    # What the last aggregation found (agreement, acceptance, per relation, per
    # annotator); written by campaign_aggregate.
    stats = models.JSONField(default=dict, blank=True)
    aggregated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def judgments_wanted(self) -> int:
        return self.item_count * self.judgments_per_item


class Item(models.Model):
    """One triple to judge in a campaign, or a gold item with a known answer.

    The text is copied from the triple so gold items (which may come from a
    reference file or be built by swapping tails) need no triple of their own.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, db_index=False)
    triple = models.ForeignKey(
        "corpora.Triple",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
    )
    head = models.ForeignKey(
        "corpora.Event", on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    relation = models.ForeignKey(
        "corpora.Relation", on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    tail = models.TextField()
    position = models.BigIntegerField(help_text="Order in which items are handed out.")
    is_gold = models.BooleanField(default=False)
    # Design weight: how many corpus triples this item stands for in its
    # sampling stratum (population / picks), for unbiased audit estimates.
    weight = models.FloatField(default=1.0)
    gold_acceptable = models.BooleanField(null=True, blank=True)
    gold_source = models.CharField(max_length=16, blank=True)
    # Why the gold answer is what it is, shown after a training answer.
    gold_reason = models.TextField(blank=True, db_default="")
    # Where a blind evaluation's item came from ("student", "teacher"); never shown to
    # annotators.
    source = models.CharField(max_length=16, blank=True, db_default="")
    # judgments wanted minus judgments stored minus live leases; claims take a
    # slot, expiries and skips give it back. Gold items keep 0: every
    # annotator sees each gold item once, outside this accounting.
    slots_free = models.SmallIntegerField(default=0)
    judgment_count = models.SmallIntegerField(default=0)
    # Written by campaign_aggregate.
    majority = models.BooleanField(null=True, blank=True)
    majority_confidence = models.FloatField(null=True, blank=True)
    ds_label = models.BooleanField(null=True, blank=True)
    ds_confidence = models.FloatField(null=True, blank=True)
    # A researcher's final label: it takes precedence over the crowd's everywhere.
    adjudicated_value = models.SmallIntegerField(
        choices=JudgmentValue.choices, null=True, blank=True
    )
    adjudicated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    adjudicated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "triple"],
                condition=models.Q(triple__isnull=False),
                name="item_triple_once_per_campaign",
            )
        ]
        indexes = [
            models.Index(
                fields=["campaign", "position"],
                condition=models.Q(slots_free__gt=0),
                name="item_claimable",
            ),
            models.Index(
                fields=["campaign", "position"],
                condition=models.Q(is_gold=True),
                name="item_gold",
            ),
            models.Index(fields=["campaign", "id"], name="item_campaign_id"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} of campaign {self.campaign_id}"

    @property
    def label_used(self) -> LabelUsed:
        """The label the item is used with (see `label_used`)."""
        return label_used(
            adjudicated_value=self.adjudicated_value,
            majority=self.majority,
            majority_confidence=self.majority_confidence,
            ds_label=self.ds_label,
            ds_confidence=self.ds_confidence,
        )

    @property
    def label(self) -> bool | None:
        return self.label_used.label


class LabelUsed(NamedTuple):
    label: bool | None  # True acceptable, False not, None no label
    source: str  # "adjudicated", "dawid_skene", "majority", or "" without a label
    confidence: float | None


def label_used(
    *,
    adjudicated_value: int | None,
    majority: bool | None,
    majority_confidence: float | None,
    ds_label: bool | None,
    ds_confidence: float | None,
) -> LabelUsed:
    """The label an item is used with in exports, acceptance and the critic's training: a
    researcher's adjudicated value when there is one (certain: confidence 1; "can't judge"
    means no label), else the crowd's as of the last aggregation (Dawid-Skene where it
    exists, majority otherwise). `annotation.selectors.item_label_sql` is the same in SQL."""
    if adjudicated_value is not None:
        if adjudicated_value == JudgmentValue.CANT_JUDGE:
            return LabelUsed(None, "adjudicated", None)
        return LabelUsed(adjudicated_value > 0, "adjudicated", 1.0)
    if ds_label is not None:
        return LabelUsed(ds_label, "dawid_skene", ds_confidence)
    if majority is not None:
        return LabelUsed(majority, "majority", majority_confidence)
    return LabelUsed(None, "", None)


class Assignment(models.Model):
    """A lease: an item handed to one annotator until it is judged, skipped or expires."""

    class Status(models.TextChoices):
        LEASED = "leased"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"
        EXPIRED = "expired"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, db_index=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, db_index=False)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            # An annotator never sees the same item twice.
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_once")
        ]
        indexes = [
            models.Index(
                fields=["campaign", "expires_at"],
                condition=models.Q(status="leased"),
                name="assignment_live",
            ),
            models.Index(fields=["annotator", "campaign", "status"], name="assignment_annotator"),
        ]

    def __str__(self) -> str:
        return f"lease {self.pk} ({self.status})"


class Judgment(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, db_index=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, db_index=False)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="judgment"
    )
    value = models.SmallIntegerField(choices=JudgmentValue.choices)
    flagged = models.BooleanField(default=False, help_text="Flagged as offensive.")
    created_at = models.DateTimeField()
    seconds = models.FloatField(null=True, blank=True, help_text="Time spent on the item.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="judgment_once"),
            models.CheckConstraint(
                condition=models.Q(value__in=[2, 1, -1, -2, -9]), name="judgment_value_on_scale"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "annotator", "created_at"], name="judgment_recent"),
            models.Index(fields=["campaign", "id"], name="judgment_campaign_id"),
            # The review's "flagged offensive" filter: a few rows, whatever the campaign's size.
            models.Index(
                fields=["campaign", "item"],
                condition=models.Q(flagged=True),
                name="judgment_flagged",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.value} on item {self.item_id}"

    @property
    def acceptable(self) -> bool | None:
        return None if self.value == JudgmentValue.CANT_JUDGE else self.value > 0


class CampaignAnnotator(models.Model):
    """An annotator's membership and standing in a campaign: how they joined, training,
    gold record, sessions, and whether (and why) they are paused."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="annotators")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    joined_at = models.DateTimeField(auto_now_add=True)
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    paused = models.BooleanField(default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=300, blank=True, db_default="")
    # Set when a researcher reinstates a paused annotator: the gold rule no
    # longer pauses them in this campaign.
    reinstated = models.BooleanField(default=False)
    # Position of the last regular item claimed: the next claim looks after it
    # first, so it does not walk past everything this annotator already judged.
    claim_position = models.BigIntegerField(null=True, blank=True)
    joined_via = models.ForeignKey(
        "JoinLink", null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    # The platform's ids of this visit (study, session, assignment, HIT).
    platform_ids = models.JSONField(default=dict, blank=True, db_default={})
    training_round = models.PositiveSmallIntegerField(default=0, db_default=0)
    training_answered = models.PositiveIntegerField(default=0, db_default=0)
    training_correct = models.PositiveIntegerField(default=0, db_default=0)
    qualified_at = models.DateTimeField(null=True, blank=True)
    session_started_at = models.DateTimeField(null=True, blank=True)
    completions = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="Completion codes issued to this annotator in this campaign.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "annotator"], name="campaign_annotator_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} in {self.campaign_id}"

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None


class JoinLink(models.Model):
    """A link a researcher pastes into a crowd platform's study: whoever opens it joins the
    campaign as an annotator, without a password."""

    class Platform(models.TextChoices):
        PROLIFIC = "prolific", "Prolific"
        MTURK = "mturk", "Amazon Mechanical Turk"
        PLAIN = "plain", "plain link"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="join_links")
    token = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=100, blank=True)
    platform = models.CharField(max_length=16, choices=Platform.choices, default=Platform.PLAIN)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    completion_code = models.CharField(max_length=64, blank=True)
    completion_url = models.URLField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"join link {self.pk} of campaign {self.campaign_id}"


class CrowdWorker(models.Model):
    """A crowd platform's worker: the same platform id is always the same annotator."""

    platform = models.CharField(max_length=16, choices=JoinLink.Platform.choices)
    worker_id = models.CharField(max_length=128)
    annotator = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crowd_worker"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "worker_id"], name="crowd_worker_once")
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.worker_id}"


class TrainingAnswer(models.Model):
    """An answer to a training item; training answers are never judgments."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, db_index=False)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    round = models.PositiveSmallIntegerField()
    value = models.SmallIntegerField(choices=JudgmentValue.choices)
    correct = models.BooleanField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "annotator", "round", "item"], name="training_answer_once"
            )
        ]

    def __str__(self) -> str:
        return f"training answer {self.value} on item {self.item_id}"
