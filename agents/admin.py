"""Agent runs in the admin: read-only, with one action, "Stop", through the lifecycle.

Runs change only through their transitions (``agents/lifecycle.py``) and what their
agents report; nothing an agent reported can be edited here, and runs go only with
their experiment.
"""

from django.contrib import admin, messages

from agents import lifecycle
from agents.models import AgentRun
from experiments.admin import StaffMayOperate
from experiments.errors import ConflictError


@admin.register(AgentRun)
class AgentRunAdmin(StaffMayOperate, admin.ModelAdmin):
    list_display = (
        "public_id",
        "name",
        "agent_type",
        "experiment",
        "attempt",
        "status",
        "progress_percent",
        "started_at",
        "completed_at",
    )
    list_filter = ("status", "agent_type", "created_at")
    search_fields = ("public_id", "name", "agent_type", "experiment__public_id", "experiment__name")
    list_select_related = ("experiment",)
    ordering = ("-created_at", "-id")
    exclude = ("token_hash",)
    actions = ["stop_runs"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in AgentRun._meta.fields if field.name != "token_hash"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_stop_permission(self, request) -> bool:
        return StaffMayOperate._staff(request)

    @admin.action(description="Stop the selected runs", permissions=["stop"])
    def stop_runs(self, request, queryset):
        stopped = 0
        for run in queryset:
            try:
                lifecycle.stop_run(run=run, by=request.user)
            except ConflictError as exc:
                self.message_user(request, f"{run}: {exc.detail}", messages.WARNING)
            else:
                stopped += 1
        if stopped:
            self.message_user(request, f"{stopped} run(s) stopped.", messages.SUCCESS)
