"""Agent-run endpoints under /api/research/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from agents.api.reporting import REPORT_VIEWS
from agents.api.views import RunViewSet

router = SimpleRouter(trailing_slash=False)
router.register("agents", RunViewSet, basename="agent")

urlpatterns = [
    *[path(f"agents/<str:run_id>/{kind}", view.as_view(), name=f"agent-{kind}") for kind, view in REPORT_VIEWS.items()],
    *router.urls,
]
