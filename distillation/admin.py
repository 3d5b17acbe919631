from django.contrib import admin

from .models import StudentEvaluation, StudentRun


class StudentEvaluationInline(admin.TabularInline):
    model = StudentEvaluation
    fields = ["corpus", "decoding", "pairs", "campaign", "job", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(StudentRun)
class StudentRunAdmin(admin.ModelAdmin):
    """Read-mostly: runs are created and trained through the pages, the API or the CLI."""

    list_display = [
        "name",
        "corpus",
        "preset",
        "base_model",
        "architecture",
        "steps",
        "train_loss",
        "finished_at",
        "created_at",
    ]
    list_filter = ["architecture", "device"]
    search_fields = ["name", "base_model", "corpus__name"]
    list_select_related = ["corpus", "preset"]
    inlines = [StudentEvaluationInline]
    readonly_fields = [
        field.name
        for field in StudentRun._meta.get_fields()
        if field.concrete and field.name not in ("name",)
    ]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(StudentEvaluation)
class StudentEvaluationAdmin(admin.ModelAdmin):
    list_display = ["pk", "run", "corpus", "decoding", "pairs", "campaign", "created_at"]
    list_filter = ["decoding"]
    search_fields = ["run__name", "corpus__name"]
    list_select_related = ["run", "corpus", "campaign"]
    readonly_fields = [
        field.name
        for field in StudentEvaluation._meta.get_fields()
        if field.concrete and not field.many_to_many
    ]
    filter_horizontal = ["relations"]

    def has_add_permission(self, request) -> bool:
        return False
