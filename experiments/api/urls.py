"""Experiment and system endpoints under /api/research/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from experiments.api import results, system
from experiments.api.views import ExperimentViewSet

router = SimpleRouter(trailing_slash=False)
router.register("experiments", ExperimentViewSet, basename="experiment")

urlpatterns = [
    path("auth/token", system.AuthTokenView.as_view(), name="auth-token"),
    path("status", system.StatusView.as_view(), name="status"),
    path("config", system.ConfigView.as_view(), name="config"),
    path("command", system.CommandView.as_view(), name="command"),
    *router.urls,
]

urlpatterns += [
    path("results/<str:experiment_id>", results.ResultsView.as_view(), name="results"),
    path("metrics/<str:experiment_id>", results.MetricsView.as_view(), name="metrics"),
    path("export/<str:experiment_id>", results.ExportView.as_view(), name="export"),
]
