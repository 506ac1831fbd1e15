"""GET results/{id}, GET metrics/{id} and POST export/{id}: bodies, roles, errors, and
exports that parse back to exactly what is stored."""

import csv
import io
import json

import pytest
from asgiref.sync import async_to_sync

from agents.models import LogLine, MetricPoint
from experiments.models import Role
from experiments.timestamps import format_timestamp
from realtime.models import Event
from tests.agents.conftest import Agent
from tests.factories import api_client, make_experiment, started_experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished_mix(alice, bob, charlie):
    """A running experiment of three runs: one completed, one failed, one still running."""
    experiment, issued = started_experiment(alice, agents=3, members={bob: Role.OPERATOR, charlie: Role.VIEWER})
    done, broken, busy = (Agent(run=i.run, token=i.token) for i in issued)
    done.post("progress", {"progress_percent": 50, "metrics": {"tokens_used": 1200, "cost": 0.25}})
    done.post(
        "metrics",
        {"points": [{"name": "loss", "value": v, "step": s} for s, v in enumerate([0.9, 0.5, 0.7, 0.2])]},
    )
    done.post("logs", {"lines": [{"level": "info", "message": "reading"}, {"level": "error", "message": 'a, "b"'}]})
    done.post("validation", {"passed": True, "details": {"tests": 12}})
    done.post("complete", {"result": {"pr": 17}, "metrics": {"tokens_used": 2000, "cost": 0.5, "elapsed_time": 30}})
    broken.post("progress", {"progress_percent": 20, "metrics": {"tokens_used": 300, "cost": 0.125}})
    broken.post("metrics", {"points": [{"name": "loss", "value": 2.0}, {"name": "acc", "value": 0.1}]})
    broken.post("fail", {"error": "Out of memory"})
    busy.post("progress", {"progress_percent": 70, "metrics": {"tokens_used": 500, "cost": 1.0}})
    busy.post("logs", {"lines": [{"level": "warning", "message": "line\nbreak"}]})
    return experiment, done, broken, busy


# Results ---------------------------------------------------------------------------------


def test_results_give_every_runs_outcome_and_a_summary(finished_mix, charlie):
    experiment, done, broken, busy = finished_mix

    response = api_client(charlie).get(f"/api/research/results/{experiment.public_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["experiment"]["id"] == experiment.public_id
    runs = {row["run_id"]: row for row in body["runs"]}
    assert list(runs) == [done.id, broken.id, busy.id]
    assert runs[done.id]["outcome"] == "completed"
    assert runs[done.id]["result"] == {"pr": 17}
    assert runs[done.id]["validation"]["passed"] is True
    assert runs[done.id]["validation"]["details"] == {"tests": 12}
    assert runs[done.id]["metrics"] == {"tokens_used": 2000, "cost": 0.5, "elapsed_time": 30.0}
    assert runs[done.id]["duration_seconds"] >= 0
    assert runs[broken.id]["outcome"] == "failed"
    assert runs[broken.id]["error"] == "Out of memory"
    assert runs[busy.id]["outcome"] == "in_progress"
    assert runs[busy.id]["status"] == "running"
    assert runs[busy.id]["completed_at"] is None
    summary = body["summary"]
    assert summary["by_status"] == {"completed": 1, "failed": 1, "running": 1}
    assert summary["total_runs"] == 3
    assert summary["total_tokens"] == 2000 + 300 + 500
    assert summary["total_cost"] == pytest.approx(0.5 + 0.125 + 1.0)
    assert summary["duration_seconds"] >= 0
    assert summary["validation"] == {"passed": 1, "failed": 0}


def test_results_of_an_experiment_not_started_yet(alice):
    experiment, _ = make_experiment(alice, agents=2)

    body = api_client(alice).get(f"/api/research/results/{experiment.public_id}").json()

    assert body["summary"]["by_status"] == {"pending": 2}
    assert body["summary"]["total_tokens"] == 0
    assert body["summary"]["total_cost"] == 0
    assert body["summary"]["duration_seconds"] is None
    assert {row["outcome"] for row in body["runs"]} == {"in_progress"}


def test_results_count_the_latest_attempt_of_each_agent(finished_mix, bob):
    experiment, _done, broken, _busy = finished_mix
    retried = api_client(bob).post(f"/api/research/agents/{broken.id}/retry")
    assert retried.status_code == 201

    body = api_client(bob).get(f"/api/research/results/{experiment.public_id}").json()

    assert body["summary"]["total_runs"] == 3
    assert body["summary"]["attempts"] == 4
    assert body["summary"]["by_status"] == {"completed": 1, "running": 1, "starting": 1}
    rows = {row["run_id"]: row for row in body["runs"]}
    assert rows[broken.id]["latest_attempt"] is False
    assert rows[retried.json()["id"]]["retry_of"] == broken.id


@pytest.mark.parametrize("path", ["results", "metrics"])
def test_reads_are_404_for_non_members_and_unknown_ids_and_401_without_credentials(finished_mix, dave, anon, path):
    experiment, *_ = finished_mix

    assert api_client(dave).get(f"/api/research/{path}/{experiment.public_id}").status_code == 404
    assert api_client(dave).get(f"/api/research/{path}/exp_doesnotexist").status_code == 404
    assert anon.get(f"/api/research/{path}/{experiment.public_id}").status_code == 401


# Metrics ---------------------------------------------------------------------------------


def test_metrics_give_series_and_summaries_per_run_and_metric(finished_mix, charlie):
    experiment, done, broken, _busy = finished_mix

    body = api_client(charlie).get(f"/api/research/metrics/{experiment.public_id}").json()

    assert body["experiment_id"] == experiment.public_id
    assert set(body["series"]) == {done.id, broken.id}
    loss = body["series"][done.id]["loss"]
    assert [(p["step"], p["value"]) for p in loss] == [(0, 0.9), (1, 0.5), (2, 0.7), (3, 0.2)]
    stored = list(
        MetricPoint.objects.filter(series__run=done.run, series__name="loss")
        .order_by("idx")
        .values_list("timestamp", flat=True)
    )
    assert [p["timestamp"] for p in loss] == [format_timestamp(t) for t in stored]
    assert body["summary"][done.id]["loss"] == {
        "min": 0.2,
        "max": 0.9,
        "avg": pytest.approx(0.575),
        "last": 0.2,
        "count": 4,
    }
    assert body["summary"][broken.id]["acc"] == {"min": 0.1, "max": 0.1, "avg": 0.1, "last": 0.1, "count": 1}


def test_metrics_are_fresh_after_every_batch_and_unchanged_by_other_events(finished_mix, charlie):
    experiment, done, _broken, busy = finished_mix
    client = api_client(charlie)
    path = f"/api/research/metrics/{experiment.public_id}"
    first = client.get(path).json()

    # Progress and logs move the experiment's seq but not its metrics: the same body.
    busy.post("progress", {"progress_percent": 80})
    busy.post("logs", {"lines": [{"level": "info", "message": "still here"}]})
    assert client.get(path).json() == first

    # A batch on a new series, then one on an existing series: each shows at once.
    busy.post("metrics", {"points": [{"name": "loss", "value": 3.0, "step": 1}]})
    second = client.get(path).json()
    assert second["series"][busy.id]["loss"][0]["value"] == 3.0
    assert second["summary"][busy.id]["loss"]["count"] == 1
    busy.post("metrics", {"points": [{"name": "loss", "value": 1.0, "step": 2}]})
    third = client.get(path).json()
    assert [p["value"] for p in third["series"][busy.id]["loss"]] == [3.0, 1.0]
    assert third["summary"][busy.id]["loss"] == {"min": 1.0, "max": 3.0, "avg": 2.0, "last": 1.0, "count": 2}
    assert third["series"][done.id] == first["series"][done.id]


def test_metrics_max_points_downsamples(finished_mix, charlie):
    experiment, done, *_ = finished_mix

    body = api_client(charlie).get(f"/api/research/metrics/{experiment.public_id}", {"max_points": 2}).json()

    values = [p["value"] for p in body["series"][done.id]["loss"]]
    assert sorted(values) == [0.2, 0.9]
    assert body["max_points"] == 2
    assert body["downsampled"] is True
    assert body["summary"][done.id]["loss"]["count"] == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_points": 1}, "max_points"),
        ({"max_points": 10_001}, "max_points"),
        ({"max_points": "many"}, "max_points"),
        ({"run": "exp_notarun"}, "run"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_bad_metrics_parameters_are_400(finished_mix, charlie, params, field):
    experiment, *_ = finished_mix

    response = api_client(charlie).get(f"/api/research/metrics/{experiment.public_id}", params)

    assert response.status_code == 400
    assert field in response.json()["fields"]


# Export ----------------------------------------------------------------------------------


def export(user, experiment, body):
    return api_client(user).post(f"/api/research/export/{experiment.public_id}", body, format="json")


def content_of(response) -> str:
    """The streamed body (an async iterator, as daphne would consume it)."""
    content = response.streaming_content
    if hasattr(content, "__aiter__"):

        async def collect() -> bytes:
            return b"".join([chunk async for chunk in content])

        return async_to_sync(collect)().decode()
    return b"".join(content).decode()


def stored_parts(experiment, done, broken, busy) -> dict:
    """What the store holds, in the export's shapes."""
    run_ids = {r.run.pk: r.id for r in (done, broken, busy)}
    metrics = [
        {
            "run_id": run_ids[p.series.run_id],
            "name": p.series.name,
            "step": p.step,
            "value": p.value,
            "timestamp": format_timestamp(p.timestamp),
        }
        for p in MetricPoint.objects.filter(series__run__experiment=experiment)
        .select_related("series")
        .order_by("series__run__created_at", "series__run_id", "series__name", "idx")
    ]
    logs = [
        {
            "id": line.pk,
            "run_id": run_ids[line.run_id],
            "level": line.level,
            "message": line.message,
            "timestamp": format_timestamp(line.timestamp),
        }
        for line in LogLine.objects.filter(run__experiment=experiment).order_by("run_id", "pk")
    ]
    events = list(
        Event.objects.filter(experiment_id=experiment.public_id)
        .order_by("seq")
        .values_list("seq", "event_type", "data")
    )
    return {"metrics": metrics, "logs": logs, "events": events}


def test_json_export_holds_the_experiment_and_every_part_as_stored(finished_mix, bob):
    experiment, done, broken, busy = finished_mix

    response = export(bob, experiment, {"format": "json"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == f'attachment; filename="{experiment.public_id}.json"'
    document = json.loads(content_of(response))
    assert list(document) == ["experiment", "runs", "metrics", "events", "logs"]
    assert document["experiment"]["id"] == experiment.public_id
    assert [r["id"] for r in document["runs"]] == [done.id, broken.id, busy.id]
    assert document["runs"][0]["result"] == {"pr": 17}
    assert document["runs"][1]["error"] == "Out of memory"
    stored = stored_parts(experiment, done, broken, busy)
    assert document["metrics"] == stored["metrics"]
    assert document["logs"] == stored["logs"]
    assert [(e["seq"], e["event_type"], e["data"]) for e in document["events"]] == stored["events"]
    assert all(e["experiment_id"] == experiment.public_id for e in document["events"])


def test_json_export_with_include_has_only_those_parts(finished_mix, bob):
    experiment, *_ = finished_mix

    document = json.loads(content_of(export(bob, experiment, {"format": "json", "include": ["logs", "runs"]})))

    assert list(document) == ["experiment", "logs", "runs"]


def test_ndjson_export_is_one_record_a_line(finished_mix, bob):
    experiment, done, broken, busy = finished_mix

    response = export(bob, experiment, {"format": "ndjson"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert response["Content-Disposition"] == f'attachment; filename="{experiment.public_id}.ndjson"'
    text = content_of(response)
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    assert records[0]["record"] == "experiment"
    assert records[0]["id"] == experiment.public_id
    kinds = [r["record"] for r in records]
    assert kinds == ["experiment"] + ["run"] * 3 + ["metric"] * 6 + ["event"] * kinds.count("event") + ["log"] * 3
    stored = stored_parts(experiment, done, broken, busy)
    strip = lambda r: {k: v for k, v in r.items() if k != "record"}  # noqa: E731
    assert [strip(r) for r in records if r["record"] == "metric"] == stored["metrics"]
    assert [strip(r) for r in records if r["record"] == "log"] == stored["logs"]
    assert [(r["seq"], r["event_type"], r["data"]) for r in records if r["record"] == "event"] == stored["events"]


def test_csv_export_defaults_to_the_metrics_table(finished_mix, bob):
    experiment, done, broken, busy = finished_mix

    response = export(bob, experiment, {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="{experiment.public_id}.csv"'
    rows = list(csv.DictReader(io.StringIO(content_of(response))))
    expected = stored_parts(experiment, done, broken, busy)["metrics"]
    assert [list(row) for row in rows[:1]] == [["run_id", "name", "step", "value", "timestamp"]]
    assert [
        {
            "run_id": r["run_id"],
            "name": r["name"],
            "step": int(r["step"]),
            "value": float(r["value"]),
            "timestamp": r["timestamp"],
        }
        for r in rows
    ] == expected


def test_csv_export_of_logs_quotes_commas_quotes_and_newlines(finished_mix, bob):
    experiment, done, broken, busy = finished_mix

    text = content_of(export(bob, experiment, {"format": "csv", "include": ["logs", "metrics"]}))

    rows = list(csv.DictReader(io.StringIO(text)))
    expected = stored_parts(experiment, done, broken, busy)["logs"]
    assert [{**r, "id": int(r["id"])} for r in rows] == expected
    assert rows[1]["message"] == 'a, "b"'
    assert rows[2]["message"] == "line\nbreak"


def test_csv_export_of_runs_and_events(finished_mix, bob):
    experiment, done, broken, busy = finished_mix

    runs = list(
        csv.DictReader(io.StringIO(content_of(export(bob, experiment, {"format": "csv", "include": ["runs"]}))))
    )
    events = list(
        csv.DictReader(io.StringIO(content_of(export(bob, experiment, {"format": "csv", "include": ["events"]}))))
    )

    assert [(r["id"], r["status"], r["tokens_used"]) for r in runs] == [
        (done.id, "completed", "2000"),
        (broken.id, "failed", "300"),
        (busy.id, "running", "500"),
    ]
    assert runs[1]["error"] == "Out of memory"
    stored = stored_parts(experiment, done, broken, busy)["events"]
    assert [(int(e["seq"]), e["event_type"], json.loads(e["data"])) for e in events] == stored


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "xml"}, "format"),
        ({}, "format"),
        ({"format": "json", "include": ["runs", "secrets"]}, "include"),
        ({"format": "json", "include": []}, "include"),
        ({"format": "json", "include": "runs"}, "include"),
        ({"format": "json", "compress": True}, "compress"),
    ],
)
def test_an_unknown_format_or_part_is_400(finished_mix, bob, body, field):
    experiment, *_ = finished_mix

    response = export(bob, experiment, body)

    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert field in response.json()["fields"]


def test_export_needs_the_operator_role(finished_mix, charlie, dave, alice):
    experiment, *_ = finished_mix

    assert export(charlie, experiment, {"format": "json"}).status_code == 403
    assert export(dave, experiment, {"format": "json"}).status_code == 404
    assert export(alice, experiment, {"format": "json"}).status_code == 200


def test_export_accepts_a_download_accept_header(finished_mix, bob):
    experiment, *_ = finished_mix

    response = api_client(bob).post(
        f"/api/research/export/{experiment.public_id}", {"format": "csv"}, format="json", HTTP_ACCEPT="text/csv"
    )

    assert response.status_code == 200
    assert content_of(response).startswith("run_id,name,step,value,timestamp")
