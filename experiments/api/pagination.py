"""Page-number pagination: ``page_size`` defaults to 10; anything above 100 is served as 100."""

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 10
    page_size_query_param = "page_size"
    max_page_size = 100
