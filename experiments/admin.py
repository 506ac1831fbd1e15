"""The admin for operators: experiments with their runs and members.

Every change made here goes through the same services as the API, so it records the same
events and reaches open sockets the same way: field edits through
``lifecycle.update_experiment``, start/stop/delete through their lifecycle functions,
members through ``membership``. Status, ids and times are read-only: only transitions
change them. Experiments are created through the API or the dashboard, where each run's
token is shown once; the admin has nowhere to show it.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from rest_framework import serializers

from agents.models import AgentRun
from experiments import lifecycle, membership
from experiments.api.fields import BoundedJSONField
from experiments.errors import ConflictError
from experiments.models import Experiment, ExperimentStatus, Membership, Role

EDITABLE_FIELDS = ("name", "description", "config")


class StaffMayOperate:
    """Staff may do everything (the contract's roles): on the research models, being staff
    is enough, without also granting each Django model permission one by one. What an
    admin forbids for everyone (adding runs, editing events) stays forbidden."""

    @staticmethod
    def _staff(request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return self._staff(request)

    def has_add_permission(self, request, obj=None):
        return self._staff(request)

    def has_view_permission(self, request, obj=None):
        return self._staff(request)

    def has_change_permission(self, request, obj=None):
        return self._staff(request)

    def has_delete_permission(self, request, obj=None):
        return self._staff(request)


CONFIG_FIELD = BoundedJSONField(object_only=True)


class RunInline(StaffMayOperate, admin.TabularInline):
    """Runs change through their own transitions (AgentRun admin, API), never here."""

    model = AgentRun
    fk_name = "experiment"
    fields = ("public_id", "name", "agent_type", "attempt", "status", "progress_percent", "started_at", "completed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("created_at", "id")

    def has_add_permission(self, request, obj=None):
        return False


class MembershipFormSet(forms.BaseInlineFormSet):
    """The owner is the creator, for good: their row cannot change or go."""

    def clean(self):
        super().clean()
        for form in self.forms:
            if not hasattr(form, "cleaned_data"):
                continue
            was_owner = form.instance.pk is not None and form.initial.get("role") == Role.OWNER
            if was_owner and (form.has_changed() or form.cleaned_data.get("DELETE")):
                raise ValidationError("The owner's membership cannot change or be removed.")
            if not was_owner and form.cleaned_data.get("role") == Role.OWNER:
                raise ValidationError("An experiment has one owner, its creator.")
            user = form.cleaned_data.get("user")
            if user is not None and not user.is_active and not form.cleaned_data.get("DELETE"):
                raise ValidationError(f"{user.username} is not an active user.")


class MembershipInline(StaffMayOperate, admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)
    extra = 0


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = EDITABLE_FIELDS

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("This field may not be blank.")
        return name

    def clean_config(self):
        # The same bounds as the API's (size, depth, finite numbers, no NUL).
        try:
            return CONFIG_FIELD.run_validation(self.cleaned_data.get("config"))
        except serializers.ValidationError as exc:
            raise ValidationError(exc.detail) from None


@admin.register(Experiment)
class ExperimentAdmin(StaffMayOperate, admin.ModelAdmin):
    form = ExperimentForm
    inlines = [RunInline, MembershipInline]
    list_display = ("name", "public_id", "status", "created_by", "created_at", "started_at", "completed_at")
    list_filter = ("status", "created_at")
    search_fields = ("name", "description", "public_id", "created_by__username")
    list_select_related = ("created_by",)
    ordering = ("-created_at", "-id")
    readonly_fields = ("public_id", "status", "created_by", "created_at", "updated_at", "started_at", "completed_at")
    actions = ["start_experiments", "stop_experiments"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status != ExperimentStatus.RUNNING)

    def get_readonly_fields(self, request, obj=None):
        # The config is fixed once the experiment has started (lifecycle.update_experiment).
        if obj is not None and obj.status != ExperimentStatus.CREATED:
            return (*self.readonly_fields, "config")
        return self.readonly_fields

    # Edits -------------------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_FIELDS}
        if changes:
            lifecycle.update_experiment(experiment=obj, by=request.user, **changes)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        experiment = form.instance
        # What the admin's change message and history read from a saved formset.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for member_form in formset.forms:
            data = getattr(member_form, "cleaned_data", None) or {}
            deleting = bool(data.get("DELETE"))
            if not data or not (deleting or member_form.has_changed()):
                continue
            before = member_form.instance.user if member_form.instance.pk else None
            if before is not None and (deleting or before != data["user"]):
                membership.remove_member(experiment=experiment, username=before.username, by=request.user)
                formset.deleted_objects.append(member_form.instance)
            if deleting:
                continue
            member, created = membership.set_member(
                experiment=experiment, username=data["user"].username, role=data["role"], by=request.user
            )
            if created:
                formset.new_objects.append(member)
            else:
                formset.changed_objects.append((member, member_form.changed_data))
        return None

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Runs go with their experiment, though the run admin never deletes one alone.
        perms_needed.discard(AgentRun._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        lifecycle.delete_experiment(experiment=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        self._each(request, queryset, lifecycle.delete_experiment, "deleted")

    # Actions -----------------------------------------------------------------------------

    @admin.action(description="Start the selected experiments", permissions=["change"])
    def start_experiments(self, request, queryset):
        self._each(request, queryset, lifecycle.start_experiment, "started")

    @admin.action(description="Stop the selected experiments", permissions=["change"])
    def stop_experiments(self, request, queryset):
        self._each(request, queryset, lifecycle.stop_experiment, "stopped")

    def _each(self, request, queryset, service, done: str) -> None:
        """Call the service once per experiment, each in its own transaction."""
        succeeded, refused = [], []
        for experiment in queryset:
            try:
                service(experiment=experiment, by=request.user)
            except ConflictError as exc:
                refused.append(f"{experiment.name}: {exc.detail}")
            else:
                succeeded.append(experiment.name)
        if succeeded:
            self.message_user(request, f"{len(succeeded)} experiment(s) {done}.", messages.SUCCESS)
        for detail in refused:
            self.message_user(request, detail, messages.WARNING)
