"""The event store in the admin, read-only: events are the history, never edited."""

from django.contrib import admin

from experiments.admin import StaffMayOperate
from realtime.models import Event


@admin.register(Event)
class EventAdmin(StaffMayOperate, admin.ModelAdmin):
    list_display = ("id", "event_type", "experiment_id", "seq", "run_id", "timestamp")
    list_filter = ("event_type", "timestamp")
    search_fields = ("experiment_id", "run_id", "event_type")
    ordering = ("-id",)
    readonly_fields = ("id", "event_type", "experiment_id", "seq", "run_id", "data", "timestamp")
    show_full_result_count = False  # a count of millions of rows on every page is slow

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
