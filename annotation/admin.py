"""Admin views of campaigns and judgments: read-mostly, since every write that keeps
the assignment invariants goes through annotation.services."""

from __future__ import annotations

from django.contrib import admin

from core.pagination import CappedCountPaginator

from .models import Campaign, CampaignAnnotator, CrowdWorker, JoinLink, Judgment


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "corpus",
        "status",
        "sampling",
        "judgments_per_item",
        "item_count",
        "gold_count",
        "created_at",
    )
    list_filter = ("status", "sampling")
    search_fields = ("name",)
    readonly_fields = ("corpus", "item_count", "gold_count", "stats", "aggregated_at", "seed")
    raw_id_fields = ("created_by",)


@admin.register(CampaignAnnotator)
class CampaignAnnotatorAdmin(admin.ModelAdmin):
    list_display = (
        "campaign",
        "annotator",
        "gold_answered",
        "gold_correct",
        "paused",
        "pause_reason",
        "reinstated",
        "completions",
    )
    list_filter = ("paused", "reinstated")
    raw_id_fields = ("campaign", "annotator")
    readonly_fields = ("gold_answered", "gold_correct")


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ("campaign", "item", "annotator", "value", "flagged", "created_at")
    list_filter = ("value", "flagged")
    raw_id_fields = ("campaign", "item", "annotator", "assignment")
    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # item counters would drift; undo goes through judgment_undo


@admin.register(JoinLink)
class JoinLinkAdmin(admin.ModelAdmin):
    """Links are made and revoked on the campaign's page (the token is never edited)."""

    list_display = ("campaign", "label", "platform", "uses", "max_uses", "expires_at", "revoked_at")
    list_filter = ("platform",)
    raw_id_fields = ("campaign", "created_by")
    readonly_fields = ("token", "uses", "created_at")


@admin.register(CrowdWorker)
class CrowdWorkerAdmin(admin.ModelAdmin):
    list_display = ("platform", "worker_id", "annotator", "created_at")
    list_filter = ("platform",)
    search_fields = ("worker_id",)
    raw_id_fields = ("annotator",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # one platform id, one annotator: never re-pointed by hand
