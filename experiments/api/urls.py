"""Experiment and system endpoints under /api/research/."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from experiments.api import results, system
from experiments.api.views import ExperimentViewSet
from experiments.ids import id_pattern

router = SimpleRouter(trailing_slash=False)
router.register("experiments", ExperimentViewSet, basename="experiment")

urlpatterns = [
    path("auth/token", system.AuthTokenView.as_view(), name="auth-token"),
    path("status", system.StatusView.as_view(), name="status"),
    path("config", system.ConfigView.as_view(), name="config"),
    path("command", system.CommandView.as_view(), name="command"),
    *router.urls,
]

# Only id-shaped values reach a lookup; anything else is the catch-all's 404.
EXPERIMENT_ID = f"(?P<experiment_id>{id_pattern('exp')})"

urlpatterns += [
    re_path(rf"^results/{EXPERIMENT_ID}$", results.ResultsView.as_view(), name="results"),
    re_path(rf"^metrics/{EXPERIMENT_ID}$", results.MetricsView.as_view(), name="metrics"),
    re_path(rf"^export/{EXPERIMENT_ID}$", results.ExportView.as_view(), name="export"),
]
