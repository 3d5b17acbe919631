from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "progress_done", "progress_total", "created_at")
    list_filter = ("kind", "status")
    readonly_fields = ("created_at", "started_at", "heartbeat_at", "finished_at")
