"""Teachers, few-shot pools and generation runs. The corpus a run writes into lives in
`corpora`."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from corpora.models import MAX_TEXT_LENGTH, Corpus, Relation


class Teacher(models.Model):
    """A saved teacher configuration. Keys are never stored: only the *name* of the
    environment variable that holds one."""

    class Backend(models.TextChoices):
        OPENAI = "openai-compatible", "OpenAI-compatible HTTP server"
        TRANSFORMERS = "transformers", "transformers model in process"

    class Endpoint(models.TextChoices):
        CHAT = "chat", "chat completions"
        COMPLETIONS = "completions", "completions"

    name = models.CharField(max_length=100, unique=True)
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.OPENAI)
    base_url = models.CharField(
        max_length=300,
        blank=True,
        help_text="e.g. http://127.0.0.1:8080/v1 (llama.cpp, vLLM) or "
        "http://localhost:11434/v1 (Ollama) (HTTP backend).",
    )
    model = models.CharField(
        max_length=300, help_text="Model name on the server, or a local path / hub id."
    )
    endpoint = models.CharField(max_length=12, choices=Endpoint.choices, default=Endpoint.CHAT)
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "An environment variable name.")],
        help_text="Name of the environment variable holding the API key (never the key).",
    )
    device = models.CharField(max_length=20, blank=True, help_text="transformers: cpu, cuda…")
    dtype = models.CharField(max_length=10, default="auto")
    temperature = models.FloatField(default=0.9)
    top_p = models.FloatField(default=1.0)
    max_tokens = models.PositiveIntegerField(default=32)
    stop = models.JSONField(default=list, blank=True)
    concurrency = models.PositiveIntegerField(default=8)
    timeout = models.FloatField(
        default=60.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(3600)],
        help_text="Seconds one request may take before it counts as failed and is tried again.",
    )
    max_answer_mb = models.FloatField(
        default=4.0,
        validators=[MinValueValidator(0.01), MaxValueValidator(1024)],
        help_text="Largest answer read, in MB; a larger one is a failed attempt, not read on.",
    )
    give_up_after = models.PositiveIntegerField(
        default=20,
        help_text="Stop a run once this many batches in a row have failed (0: never stop).",
    )
    prompt_price_per_1k = models.DecimalField(
        max_digits=10, decimal_places=6, null=True, blank=True
    )
    completion_price_per_1k = models.DecimalField(
        max_digits=10, decimal_places=6, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def max_answer_bytes(self) -> int:
        return max(1, int(self.max_answer_mb * 2**20))


class FewShotPool(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class FewShotExample(models.Model):
    """A seed event (no relation, no tail) or an example inference (head, relation, tail)."""

    pool = models.ForeignKey(FewShotPool, on_delete=models.CASCADE, related_name="examples")
    head = models.CharField(max_length=MAX_TEXT_LENGTH)
    relation = models.ForeignKey(Relation, null=True, blank=True, on_delete=models.CASCADE)
    tail = models.CharField(max_length=MAX_TEXT_LENGTH, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["pool", "head", "relation", "tail"], name="fewshot_unique_in_pool"
            )
        ]

    def __str__(self) -> str:
        return f"{self.head} · {self.relation_id} · {self.tail}" if self.relation_id else self.head


class GenerationRun(models.Model):
    class Mode(models.TextChoices):
        INFERENCES = "inferences", "inferences for given heads"
        EVENTS = "events", "new events, then their inferences"

    teacher = models.ForeignKey(Teacher, on_delete=models.PROTECT)
    pool = models.ForeignKey(FewShotPool, on_delete=models.PROTECT)
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="generation_runs")
    job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL)
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.INFERENCES)
    relations = models.ManyToManyField(Relation)
    n_per_pair = models.PositiveIntegerField(default=5)
    k_examples = models.PositiveIntegerField(default=5)
    event_prompts = models.PositiveIntegerField(default=0)
    seed = models.IntegerField(default=0)
    temperature = models.FloatField()
    top_p = models.FloatField()
    max_tokens = models.PositiveIntegerField()
    # Totals, updated as batches finish (the report).
    requests_done = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    triples_written = models.PositiveIntegerField(default=0)
    events_written = models.PositiveIntegerField(default=0)
    dropped = models.JSONField(default=dict, blank=True)
    errors = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Who executes the run now (host:pid:uuid), taken and beaten like a job's heartbeat,
    # so that two processes never send a run's requests twice (teaching.run_lease_take).
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_taken_at = models.DateTimeField(null=True, blank=True)
    lease_heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.teacher} into {self.corpus}"


class GenerationBatch(models.Model):
    """One request's worth of work, keyed so that a restarted run never does it twice: an
    event prompt (relation empty, head '#events <i>') or a (head, relation) pair."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="batches")
    head = models.CharField(max_length=MAX_TEXT_LENGTH)
    relation = models.ForeignKey(Relation, null=True, blank=True, on_delete=models.PROTECT)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    prompt_hash = models.CharField(max_length=16, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    kept = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "head", "relation"], name="generation_batch_unique"
            ),
            models.UniqueConstraint(
                fields=["run", "head"],
                condition=models.Q(relation__isnull=True),
                name="generation_event_batch_unique",
            ),
        ]
        indexes = [models.Index(fields=["run", "status"], name="generation_batch_status")]

    def __str__(self) -> str:
        return f"{self.head} · {self.relation_id or 'events'} ({self.status})"
