"""Page-number pagination: ``page_size`` defaults to 10; anything above 100 is served as 100.

``page`` must be a whole number from 1 (or ``last``): anything else is a 400 naming the
parameter. A page past the last one is a 404, as in Django's paginator.
"""

from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 10
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_query_param)
        if raw not in (None, "", *self.last_page_strings) and not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
            raise ValidationError({self.page_query_param: ["A whole number from 1 is required."]})
        return super().paginate_queryset(queryset, request, view)
