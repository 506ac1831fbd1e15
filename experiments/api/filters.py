"""Query filters. An unknown choice value or ordering field is a 400, never ignored."""

import django_filters
from rest_framework import filters as drf_filters
from rest_framework.exceptions import ValidationError

from experiments.models import Experiment, ExperimentStatus


class ExperimentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ExperimentStatus.choices)

    class Meta:
        model = Experiment
        fields = ["status"]


class StrictOrderingFilter(drf_filters.OrderingFilter):
    """DRF's ordering filter, but ``?ordering=bogus`` answers 400 listing the valid fields."""

    def get_ordering(self, request, queryset, view):
        params = request.query_params.get(self.ordering_param)
        if not params:
            return self.get_default_ordering(view)
        fields = [param.strip() for param in params.split(",") if param.strip()]
        valid = {name for name, _label in self.get_valid_fields(queryset, view, {"request": request})}
        invalid = [f for f in fields if f.lstrip("-") not in valid]
        if invalid:
            raise ValidationError(
                {
                    self.ordering_param: [
                        f"Unknown ordering field(s): {', '.join(invalid)}. Valid: {', '.join(sorted(valid))}."
                    ]
                }
            )
        return fields
