"""Admin for corpora, relations, events and triples.

The triple table may hold millions of rows, so nothing here counts it in full or
collects a corpus's triples one by one before a delete.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from core.pagination import CappedCountPaginator

from . import services
from .models import Corpus, Event, Relation, Triple, TripleScore


@admin.register(Corpus)
class CorpusAdmin(admin.ModelAdmin):
    list_display = ("name", "triple_count", "occurrence_count", "created_by", "created_at")
    list_select_related = ("created_by",)
    search_fields = ("name",)
    readonly_fields = ("triple_count", "occurrence_count", "stats", "created_at")
    raw_id_fields = ("created_by",)

    def get_deleted_objects(self, objs, request: HttpRequest):
        # The default collector would load every triple of the corpus to list them.
        corpora = list(objs)
        triples = sum(corpus.triple_count for corpus in corpora)
        summary = [f"{corpus} ({corpus.triple_count:,} triples)" for corpus in corpora]
        model_count = {"corpora": len(corpora), "triples": triples}
        perms_needed = set() if self.has_delete_permission(request) else {"corpus"}
        return summary, model_count, perms_needed, []

    def delete_model(self, request: HttpRequest, obj: Corpus) -> None:
        services.corpus_delete(corpus=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Corpus]) -> None:
        for corpus in queryset:
            services.corpus_delete(corpus=corpus)


@admin.register(Relation)
class RelationAdmin(admin.ModelAdmin):
    list_display = ("name", "category", "sentence_template", "verbalization", "is_skd")
    list_filter = ("is_skd", "category")
    search_fields = ("name", "description")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "text")
    search_fields = ("text",)
    show_full_result_count = False
    paginator = CappedCountPaginator


class SplitFilter(admin.SimpleListFilter):
    """Split names from the corpora's stored stats, not a DISTINCT over the triple table."""

    title = "split"
    parameter_name = "split"

    def lookups(self, request: HttpRequest, model_admin):
        names: set[str] = set()
        for stats in Corpus.objects.values_list("stats", flat=True):
            names.update((stats or {}).get("by_split", {}))
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Triple]):
        return queryset.filter(split=self.value()) if self.value() else queryset


@admin.register(Triple)
class TripleAdmin(admin.ModelAdmin):
    list_display = ("id", "corpus", "head", "relation", "tail", "split", "occurrences", "score")
    list_select_related = ("corpus", "head", "relation")
    list_filter = ("corpus", "relation", SplitFilter)
    raw_id_fields = ("head", "import_job")
    show_full_result_count = False
    paginator = CappedCountPaginator

    def get_queryset(self, request: HttpRequest) -> QuerySet[Triple]:
        in_force = TripleScore.objects.filter(
            triple=OuterRef("pk"), score_set=OuterRef("corpus__score_set")
        )
        return super().get_queryset(request).annotate(score=Subquery(in_force.values("score")))

    @admin.display(description="critic score")
    def score(self, triple: Triple) -> float | None:
        return triple.score
