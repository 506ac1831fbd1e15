"""REST bodies reused inside events and snapshots, so both always agree."""

from agents.api.serializers import run_representation
from experiments.api.serializers import experiment_representation


def experiment_body(experiment, *, include_runs: bool = True) -> dict:
    runs = list(experiment.runs.select_related("retry_of").order_by("created_at", "id"))
    return experiment_representation(experiment, runs=runs, include_runs=include_runs)


def run_body(run) -> dict:
    return run_representation(run)
