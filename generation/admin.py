"""Admin for teachers, few-shot pools and runs."""

from __future__ import annotations

from django.contrib import admin

from core.pagination import CappedCountPaginator

from .models import FewShotExample, FewShotPool, GenerationBatch, GenerationRun, Teacher


@admin.register(Teacher)
class TeacherAdmin(admin.ModelAdmin):
    """Teachers hold only the name of the variable with their API key, never a key."""

    list_display = ("name", "backend", "base_url", "model", "endpoint", "api_key_env")
    list_filter = ("backend",)
    search_fields = ("name", "model", "base_url")


@admin.register(FewShotPool)
class FewShotPoolAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name", "description")


@admin.register(FewShotExample)
class FewShotExampleAdmin(admin.ModelAdmin):
    list_display = ("head", "relation", "tail", "pool")
    list_select_related = ("relation", "pool")
    list_filter = ("pool", "relation")
    search_fields = ("head", "tail")


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "teacher",
        "corpus",
        "mode",
        "job",
        "requests_done",
        "triples_written",
        "errors",
        "created_at",
    )
    list_select_related = ("teacher", "corpus", "job")
    list_filter = ("mode", "teacher")
    raw_id_fields = ("corpus", "job", "created_by")
    readonly_fields = (
        "requests_done",
        "prompt_tokens",
        "completion_tokens",
        "triples_written",
        "events_written",
        "dropped",
        "errors",
        "created_at",
    )


@admin.register(GenerationBatch)
class GenerationBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "head", "relation", "status", "attempts", "kept")
    list_select_related = ("run__teacher", "run__corpus", "relation")
    list_filter = ("status",)
    raw_id_fields = ("run",)
    search_fields = ("head",)
    show_full_result_count = False
    paginator = CappedCountPaginator
