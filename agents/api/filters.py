"""Filters for ``GET agents``; unknown values are a 400."""

import django_filters

from agents.models import AgentRun, RunStatus
from experiments.models import Experiment


def _visible_experiments(request):
    from agents.api.authentication import RunAgent

    user = getattr(request, "user", None)
    if isinstance(user, RunAgent):  # an agent reading its own run
        return Experiment.objects.filter(pk=user.run.experiment_id)
    return Experiment.objects.visible_to(user) if user is not None else Experiment.objects.none()


class RunFilter(django_filters.FilterSet):
    experiment = django_filters.ModelChoiceFilter(
        queryset=_visible_experiments, to_field_name="public_id", field_name="experiment"
    )
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    agent_type = django_filters.CharFilter(max_length=64)

    class Meta:
        model = AgentRun
        fields = ["experiment", "status", "agent_type"]
