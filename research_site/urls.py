"""Root URLs: the API, its schema and docs, the admin, the dashboard, /health."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from dashboard.urls import auth_urlpatterns
from experiments.api.errors import not_found_catchall
from experiments.api.system import health

handler400 = "experiments.api.errors.bad_request"
handler403 = "experiments.api.errors.permission_denied"
handler404 = "experiments.api.errors.page_not_found"
handler500 = "experiments.api.errors.server_error"

api = [
    path("", include("experiments.api.urls")),
    path("", include("agents.api.urls")),
    path("", include("realtime.api.urls")),
]

urlpatterns = [
    path("health", health, name="health"),
    path("api/research/", include(api)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
    path("accounts/", include(auth_urlpatterns)),
    path("", include("dashboard.urls")),
    # Anything else: 404 in the error envelope (JSON) or an HTML page for browsers.
    re_path(r"^(?P<path>.*)$", not_found_catchall),
]
