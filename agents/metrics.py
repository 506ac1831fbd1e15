"""Metric series: batch ingestion in a few statements.

Ingestion (``store_points``) validates a batch of up to 1,000 points with plain loops (a
few exact type tests for the common valid point), then writes it without building a model
object per point: on PostgreSQL the points and the new blocks of the pyramid go in with
binary ``COPY``, the blocks that already held earlier points are merged with one upsert,
and the series summaries are updated with one statement.

Every series keeps a running summary (count, min, max, sum, last) and a pyramid of
blocks: at level L each block covers 4**L consecutive points (by arrival) and stores its
minimum and maximum point, which ``agents/metric_reads.py`` reads to downsample.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from rest_framework.exceptions import ValidationError

from agents.models import MetricBlock, MetricPoint, MetricSeries
from experiments.timestamps import parse_timestamp

MAX_POINTS_PER_CALL = 1000
MAX_NAME_LENGTH = 200
LEVELS = range(1, 8)  # blocks of 4, 16, …, 16,384 points
STEP_LIMIT = 2**62
POINT_FIELDS = frozenset({"name", "value", "step", "timestamp"})


@dataclass(slots=True)
class Point:
    name: str
    value: float
    step: int | None
    timestamp: datetime | None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_points(data) -> list[Point]:
    """The batch of a ``metrics`` report, or a ``ValidationError`` naming each bad point."""
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Expected an object with points."]})
    unknown = sorted(set(data) - {"points"})
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in unknown})
    raw = data.get("points")
    if not isinstance(raw, list):
        raise ValidationError({"points": ["A list of points is required."]})
    if not raw:
        raise ValidationError({"points": ["Send at least one point."]})
    if len(raw) > MAX_POINTS_PER_CALL:
        raise ValidationError({"points": [f"At most {MAX_POINTS_PER_CALL} points a call ({len(raw)} sent)."]})
    points, errors = [], {}
    # Points of one step usually share a timestamp: parse each distinct text once.
    timestamps: dict[str, datetime | None] = {}
    for i, item in enumerate(raw):
        point = _plain_point(item, timestamps)
        if point is None:
            point, problems = _checked_point(item, timestamps)
            if problems:
                errors[str(i)] = problems
                continue
        points.append(point)
    if errors:
        raise ValidationError({"points": errors})
    return points


def _plain_point(item, timestamps: dict) -> Point | None:
    """The common, valid point checked with a few exact type tests; None: check it in full."""
    if type(item) is not dict or not item.keys() <= POINT_FIELDS:
        return None
    name, value, step = item.get("name"), item.get("value"), item.get("step")
    if type(name) is not str or len(name) > MAX_NAME_LENGTH or type(value) not in (float, int):
        return None
    name = name.strip()
    if not name or not math.isfinite(value):
        return None
    if step is not None and (type(step) is not int or not -STEP_LIMIT <= step <= STEP_LIMIT):
        return None
    timestamp = item.get("timestamp")
    if timestamp is not None:
        timestamp = _timestamp(timestamp, timestamps)
        if timestamp is None:
            return None
    return Point(name, float(value), step, timestamp)


def _timestamp(text, timestamps: dict) -> datetime | None:
    if not isinstance(text, str):
        return None
    if text not in timestamps:
        timestamps[text] = parse_timestamp(text)
    return timestamps[text]


def _checked_point(item, timestamps: dict) -> tuple[Point | None, dict]:
    """The point and, if it is not valid, every problem with it."""
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["A point is an object with name and value."]}
    problems = {}
    for name in sorted(set(item) - POINT_FIELDS):
        problems[name] = ["Unknown field."]
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        problems["name"] = ["A non-empty string is required."]
    elif len(name) > MAX_NAME_LENGTH:
        problems["name"] = [f"At most {MAX_NAME_LENGTH} characters."]
    value = item.get("value")
    if not _is_number(value):
        problems["value"] = ["A number is required."]
    elif not math.isfinite(value):
        problems["value"] = ["Must be a finite number."]
    step = item.get("step")
    if step is not None:
        if isinstance(step, float) and step.is_integer():
            step = int(step)
        if isinstance(step, bool) or not isinstance(step, int):
            problems["step"] = ["A whole number is required."]
        elif not -STEP_LIMIT <= step <= STEP_LIMIT:
            problems["step"] = ["Out of range."]
    timestamp = item.get("timestamp")
    if timestamp is not None:
        timestamp = _timestamp(timestamp, timestamps)
        if timestamp is None:
            problems["timestamp"] = ["An ISO 8601 timestamp is required."]
    if problems:
        return None, problems
    return Point(name.strip(), float(value), step, timestamp), {}


# Writing ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _SeriesState:
    """A series' running summary while a batch is applied; ``start`` is its count before."""

    pk: int
    start: int
    count: int
    sum_value: float
    min_value: float | None
    max_value: float | None
    last_value: float | None
    last_step: int | None
    last_timestamp: datetime | None


_SERIES_FIELDS = (
    "pk",
    "name",
    "count",
    "sum_value",
    "min_value",
    "max_value",
    "last_value",
    "last_step",
    "last_timestamp",
)


def _series_states(run, names: list[str]) -> dict[str, _SeriesState]:
    rows = MetricSeries.objects.filter(run=run, name__in=names).values_list(*_SERIES_FIELDS)
    return {
        name: _SeriesState(pk, count, count, total, low, high, last, last_step, last_ts)
        for pk, name, count, total, low, high, last, last_step, last_ts in rows
    }


def store_points(run, points: list[Point], now: datetime) -> dict[str, dict]:
    """Store a validated batch for a locked run; returns the latest point of each metric.

    The run's lock serialises batches of one run, so the series rows read here stay ours
    until commit and the blocks past a series' previous count cannot exist yet.
    """
    names = list(dict.fromkeys(p.name for p in points))
    series = _series_states(run, names)
    missing = [name for name in names if name not in series]
    if missing:
        MetricSeries.objects.bulk_create([MetricSeries(run=run, name=name) for name in missing])
        series = _series_states(run, names)
    rows = []
    latest = {}
    for point in points:
        s = series[point.name]
        step = point.step
        if step is None:
            step = s.last_step + 1 if s.last_step is not None else 0
        timestamp = point.timestamp or now
        value = point.value
        rows.append((s.pk, s.count, step, value, timestamp))
        s.count += 1
        s.sum_value += value
        s.min_value = value if s.min_value is None else min(s.min_value, value)
        s.max_value = value if s.max_value is None else max(s.max_value, value)
        s.last_value, s.last_step, s.last_timestamp = value, step, timestamp
        latest[point.name] = {"value": value, "step": step}
    _insert_points(rows)
    _store_blocks(_blocks(rows), {s.pk: s.start for s in series.values()})
    _update_series([series[name] for name in names])
    return latest


_POINT_COLUMNS = "series_id, idx, step, value, timestamp"
_POINT_TYPES = ("int8", "int8", "int8", "float8", "timestamptz")


def _copy_rows(table: str, columns: str, types: tuple[str, ...], rows: list[tuple]) -> None:
    """Append rows with one binary ``COPY``: psycopg encodes them in C, no SQL literals."""
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _insert_points(rows: list[tuple]) -> None:
    table = MetricPoint._meta.db_table
    if connection.vendor == "postgresql":
        _copy_rows(table, _POINT_COLUMNS, _POINT_TYPES, rows)
        return
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({_POINT_COLUMNS}) VALUES (%s, %s, %s, %s, %s)", rows)


def _blocks(rows: list[tuple]) -> list[tuple]:
    """Min/max per block at every level, each level built from the one below."""
    out = []
    # Level 0 "blocks" are the points themselves: (min point, max point), point = (idx, step, value, ts).
    current = {}
    for series_id, idx, step, value, ts in rows:
        point = (idx, step, value, ts)
        current[(series_id, idx)] = (point, point)
    for level in LEVELS:
        merged: dict = {}
        for (series_id, index), (low, high) in current.items():
            key = (series_id, index // 4)
            found = merged.get(key)
            if found is None:
                merged[key] = (low, high)
            else:
                old_low, old_high = found
                merged[key] = (
                    low if low[2] < old_low[2] else old_low,
                    high if high[2] > old_high[2] else old_high,
                )
        for (series_id, block), (low, high) in merged.items():
            out.append((series_id, level, block, *low, *high))
        current = merged
    return out


_BLOCK_COLUMNS = "series_id, level, block, min_idx, min_step, min_value, min_ts, max_idx, max_step, max_value, max_ts"
_BLOCK_TYPES = ("int8", "int2", "int8", *_POINT_TYPES[1:], *_POINT_TYPES[1:])


def _block_conflict_sql(table: str) -> str:
    def pick(side: str, op: str, column: str) -> str:
        return (
            f"{side}_{column} = CASE WHEN excluded.{side}_value {op} {table}.{side}_value "
            f"THEN excluded.{side}_{column} ELSE {table}.{side}_{column} END"
        )

    sets = [pick("min", "<", c) for c in ("idx", "step", "value", "ts")]
    sets += [pick("max", ">", c) for c in ("idx", "step", "value", "ts")]
    return f"ON CONFLICT (series_id, level, block) DO UPDATE SET {', '.join(sets)}"


def _store_blocks(blocks: list[tuple], starts: dict[int, int]) -> None:
    """Write the batch's blocks: new ones appended, those that held earlier points merged.

    A block whose first index is at or past its series' previous count holds only points
    of this batch, so no row exists for it yet: those (most of them) go in with ``COPY``;
    the few that straddle the previous end (at most one per level and series) are upserted.
    """
    if connection.vendor != "postgresql":
        _upsert_blocks(blocks)
        return
    fresh, merged = [], []
    for block in blocks:
        (fresh if block[2] * 4 ** block[1] >= starts[block[0]] else merged).append(block)
    if fresh:
        _copy_rows(MetricBlock._meta.db_table, _BLOCK_COLUMNS, _BLOCK_TYPES, fresh)
    if merged:
        _upsert_blocks(merged)


def _upsert_blocks(blocks: list[tuple]) -> None:
    table = MetricBlock._meta.db_table
    conflict = _block_conflict_sql(table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = [list(c) for c in zip(*blocks, strict=True)]
            cursor.execute(
                f"INSERT INTO {table} ({_BLOCK_COLUMNS}) SELECT * FROM unnest("
                "%s::bigint[], %s::smallint[], %s::bigint[], "
                "%s::bigint[], %s::bigint[], %s::double precision[], %s::timestamptz[], "
                "%s::bigint[], %s::bigint[], %s::double precision[], %s::timestamptz[]) " + conflict,
                columns,
            )
        else:
            cursor.executemany(
                f"INSERT INTO {table} ({_BLOCK_COLUMNS}) VALUES ({', '.join(['%s'] * 11)}) " + conflict,
                blocks,
            )


_SUMMARY_COLUMNS = ("count", "min_value", "max_value", "sum_value", "last_value", "last_step", "last_timestamp")


def _update_series(series: list[_SeriesState]) -> None:
    """Every touched series' summary in one statement."""
    table = MetricSeries._meta.db_table
    rows = [
        (s.count, s.min_value, s.max_value, s.sum_value, s.last_value, s.last_step, s.last_timestamp, s.pk)
        for s in series
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            assignments = ", ".join(f"{c} = v.{c}" for c in _SUMMARY_COLUMNS)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM unnest(%s::bigint[], %s::double precision[], "
                "%s::double precision[], %s::double precision[], %s::double precision[], %s::bigint[], "
                f"%s::timestamptz[], %s::bigint[]) AS v({', '.join(_SUMMARY_COLUMNS)}, id) "
                f"WHERE {table}.id = v.id",
                [list(c) for c in zip(*rows, strict=True)],
            )
        else:
            assignments = ", ".join(f"{c} = %s" for c in _SUMMARY_COLUMNS)
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = %s", rows)
