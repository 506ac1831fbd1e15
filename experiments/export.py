"""Exports of an experiment as JSON, NDJSON or CSV, produced in constant memory.

``export_chunks`` is a generator of byte chunks (about 64 KiB each). It reads the store
with keyset pagination (``WHERE key > last ORDER BY key LIMIT n``), a fresh bounded
query per page, so memory stays flat however many points, events or log lines there
are, and no server-side cursor has to outlive a request thread. The API streams it (see
``experiments/api/results.py``) and ``manage.py export_experiment`` writes it to a file.

Formats:
* ``json``: one document ``{"experiment": {...}, "<part>": [...], ...}``
* ``ndjson``: one object a line, each with ``"record"``: experiment, run, metric, event, log
* ``csv``: one table, the first part of ``include`` (columns in ``CSV_COLUMNS``)
"""

import csv
import io
import json
from collections.abc import Iterator

from django.core.serializers.json import DjangoJSONEncoder

from agents.api.serializers import run_representation
from agents.models import AgentRun, LogLine, MetricPoint, MetricSeries
from experiments import providers
from experiments.api.serializers import experiment_representation
from experiments.models import Experiment
from experiments.timestamps import format_timestamp

FORMATS = ("json", "csv", "ndjson")
PARTS = ("runs", "metrics", "events", "logs")
CONTENT_TYPES = {"json": "application/json", "csv": "text/csv", "ndjson": "application/x-ndjson"}
PAGE = 5000
CHUNK_BYTES = 64 * 1024

CSV_COLUMNS = {
    "metrics": ["run_id", "name", "step", "value", "timestamp"],
    "runs": [
        "id",
        "agent_type",
        "name",
        "attempt",
        "retry_of",
        "status",
        "progress_percent",
        "tokens_used",
        "cost",
        "elapsed_time",
        "error",
        "started_at",
        "completed_at",
    ],
    "events": ["id", "seq", "event_type", "run_id", "timestamp", "data"],
    "logs": ["id", "run_id", "level", "message", "timestamp"],
}


def _dumps(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


# Records of each part, as dicts, page by page ----------------------------------------------


def _runs(experiment: Experiment) -> Iterator[dict]:
    last = 0
    while True:
        page = list(
            AgentRun.objects.filter(experiment=experiment, pk__gt=last).select_related("retry_of").order_by("pk")[:PAGE]
        )
        if not page:
            return
        for run in page:
            run.experiment = experiment
            yield run_representation(run)
        last = page[-1].pk


def _metrics(experiment: Experiment) -> Iterator[dict]:
    series = (
        MetricSeries.objects.filter(run__experiment=experiment)
        .select_related("run")
        .order_by("run__created_at", "run__id", "name")
    )
    for s in series.iterator():
        run_id, name = s.run.public_id, s.name
        last = -1
        while True:
            page = list(
                MetricPoint.objects.filter(series_id=s.pk, idx__gt=last)
                .order_by("idx")
                .values_list("idx", "step", "value", "timestamp")[:PAGE]
            )
            if not page:
                break
            for _idx, step, value, timestamp in page:
                yield {
                    "run_id": run_id,
                    "name": name,
                    "step": step,
                    "value": value,
                    "timestamp": format_timestamp(timestamp),
                }
            last = page[-1][0]


def _events(experiment: Experiment) -> Iterator[dict]:
    # The event store is realtime's; it plugs its reader in (experiments/providers.py).
    return providers.experiment_events(experiment.public_id)


def _logs(experiment: Experiment) -> Iterator[dict]:
    runs = dict(AgentRun.objects.filter(experiment=experiment).values_list("pk", "public_id"))
    for run_pk in sorted(runs):
        last = 0
        while True:
            page = list(
                LogLine.objects.filter(run_id=run_pk, pk__gt=last)
                .order_by("pk")
                .values_list("pk", "level", "message", "timestamp")[:PAGE]
            )
            if not page:
                break
            for pk, level, message, timestamp in page:
                yield {
                    "id": pk,
                    "run_id": runs[run_pk],
                    "level": level,
                    "message": message,
                    "timestamp": format_timestamp(timestamp),
                }
            last = page[-1][0]


RECORDS = {"runs": _runs, "metrics": _metrics, "events": _events, "logs": _logs}
RECORD_NAMES = {"runs": "run", "metrics": "metric", "events": "event", "logs": "log"}


def parts_for(fmt: str, include: list[str] | None) -> list[str]:
    """The parts an export of ``fmt`` holds: ``include`` (all four by default), and for
    CSV, one table: the first of them (``metrics`` by default)."""
    if fmt == "csv":
        return list(include[:1]) if include else ["metrics"]
    return list(include) if include else list(PARTS)


def count_records(experiment: Experiment, include: list[str]) -> int:
    """How many records an export of these parts will hold (for progress bars)."""
    counts = {
        "runs": lambda: AgentRun.objects.filter(experiment=experiment).count(),
        "metrics": lambda: MetricPoint.objects.filter(series__run__experiment=experiment).count(),
        "events": lambda: providers.experiment_event_count(experiment.public_id),
        "logs": lambda: LogLine.objects.filter(run__experiment=experiment).count(),
    }
    return 1 + sum(counts[part]() for part in include)


# Rendering ---------------------------------------------------------------------------------


def _chunked(pieces: Iterator[str]) -> Iterator[bytes]:
    buffer: list[str] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode("utf-8")


def _json_pieces(experiment: Experiment, include: list[str], on_record) -> Iterator[str]:
    yield '{"experiment":' + _dumps(experiment_representation(experiment, include_runs=False))
    on_record()
    for part in include:
        yield f',"{part}":['
        first = True
        for record in RECORDS[part](experiment):
            yield ("" if first else ",") + _dumps(record)
            first = False
            on_record()
        yield "]"
    yield "}\n"


def _ndjson_pieces(experiment: Experiment, include: list[str], on_record) -> Iterator[str]:
    yield _dumps({"record": "experiment", **experiment_representation(experiment, include_runs=False)}) + "\n"
    on_record()
    for part in include:
        name = RECORD_NAMES[part]
        for record in RECORDS[part](experiment):
            yield _dumps({"record": name, **record}) + "\n"
            on_record()


def _csv_row(record: dict, part: str) -> list:
    if part == "runs":
        metrics = record.get("metrics") or {}
        record = {**record, **{k: metrics.get(k) for k in ("tokens_used", "cost", "elapsed_time")}}
    if part == "events":
        record = {**record, "data": _dumps(record["data"])}
    return ["" if record.get(column) is None else record.get(column) for column in CSV_COLUMNS[part]]


def _csv_pieces(experiment: Experiment, include: list[str], on_record) -> Iterator[str]:
    part = include[0]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS[part])
    for record in RECORDS[part](experiment):
        writer.writerow(_csv_row(record, part))
        on_record()
        if out.tell() >= CHUNK_BYTES:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def export_chunks(experiment: Experiment, fmt: str, include: list[str], on_record=lambda: None) -> Iterator[bytes]:
    pieces = {"json": _json_pieces, "ndjson": _ndjson_pieces, "csv": _csv_pieces}[fmt]
    return _chunked(pieces(experiment, include, on_record))


def filename(experiment: Experiment, fmt: str) -> str:
    return f"{experiment.public_id}.{fmt}"
