from django.conf import settings
from django.db import models


class Job(models.Model):
    """A long piece of work (import, export, embedding, training) the UI can follow.

    Live progress and the heartbeat are written to the cache while the job
    runs (see jobs.progress), because the job's own database transaction may
    hold SQLite's write lock; the row holds status transitions and the last
    snapshot.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(max_length=40)
    # What the job page shows, set by the app that queues the job (jobs knows no app):
    # a title, and a link to what the job is about (its corpus, run, campaign).
    title = models.CharField(max_length=200, blank=True)
    subject_url = models.CharField(max_length=300, blank=True)
    subject_label = models.CharField(max_length=200, blank=True)
    task_name = models.CharField(
        max_length=100, blank=True, help_text="The Celery task that runs the job (for retries)."
    )
    queue = models.CharField(
        max_length=40,
        default="default",
        help_text="The broker queue its messages go to, chosen when it is queued (gpu for "
        "work that wants a GPU).",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    params = models.JSONField(default=dict)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    progress_message = models.TextField(
        blank=True, help_text="The last progress line, kept when the job stops."
    )
    attempts = models.PositiveIntegerField(
        default=0,
        help_text="How many times a worker started the job; its task's message carries the "
        "attempt it is for, so only the message for attempts + 1 starts a queued job.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES
