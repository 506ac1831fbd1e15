"""Reading metric series: downsampled points, summaries, and ``GET metrics`` bodies.

Ingestion (``agents/metrics.py``) keeps, for every series, a running summary (count, min,
max, sum, last) and a pyramid of blocks: at level L each block covers 4**L consecutive
points (by arrival) and stores its minimum and maximum point. Reading a series downsampled
to ``max_points`` takes the coarsest level that still has at least ``max_points / 2``
blocks (so it reads fewer than ``2 * max_points`` rows whatever the series' length), cuts
it into ``max_points / 2`` buckets and keeps each bucket's minimum and maximum point: every
peak and trough of the series survives, as real points with their step and timestamp
(min/max, or "M4"-style, downsampling). Series shorter than that are read point by point.
On PostgreSQL the database does this for all the series of a request at once
(``agents/series_reads.py``); each series' rendered points are cached under its point
count, so a batch recomputes only the series it touched.
"""

import math

import orjson
from django.core.cache import caches
from django.db import connection, models

from agents.metrics import LEVELS
from agents.models import MetricBlock, MetricPoint, MetricSeries
from agents.series_reads import read_many
from experiments.timestamps import format_timestamp


def _choose_level(count: int, buckets: int) -> int | None:
    """The coarsest level with at least ``buckets`` blocks; None to read raw points."""
    chosen = None
    for level in LEVELS:
        if math.ceil(count / 4**level) >= buckets:
            chosen = level
        else:
            break
    return chosen


def _bucketize(units: list[tuple], buckets: int) -> list[tuple]:
    """Keep the min and max point of each of ``buckets`` consecutive groups of units.

    A unit is (min point, max point); a point is (idx, step, value, timestamp).
    """
    n = len(units)
    kept: dict[int, tuple] = {}
    for b in range(buckets):
        start, end = b * n // buckets, (b + 1) * n // buckets
        if start >= end:
            continue
        low = min((u[0] for u in units[start:end]), key=lambda p: p[2])
        high = max((u[1] for u in units[start:end]), key=lambda p: p[2])
        kept[low[0]] = low
        kept[high[0]] = high
    return list(kept.values())


def read_series(series: MetricSeries, max_points: int) -> tuple[list[dict], bool]:
    """A series' points, downsampled to at most ``max_points``; and whether it was."""
    count = series.count
    buckets = max(1, max_points // 2)
    level = _choose_level(count, buckets) if count > max_points else None
    if level is None:
        raw = list(
            MetricPoint.objects.filter(series=series).order_by("idx").values_list("idx", "step", "value", "timestamp")
        )
        if len(raw) <= max_points:
            points, downsampled = raw, False
        else:
            points, downsampled = _bucketize([(p, p) for p in raw], buckets), True
    else:
        rows = (
            MetricBlock.objects.filter(series=series, level=level)
            .order_by("block")
            .values_list("min_idx", "min_step", "min_value", "min_ts", "max_idx", "max_step", "max_value", "max_ts")
        )
        units = [((r[0], r[1], r[2], r[3]), (r[4], r[5], r[6], r[7])) for r in rows]
        points, downsampled = _bucketize(units, buckets), True
    points.sort(key=lambda p: (p[1], p[0]))
    return [{"step": p[1], "value": p[2], "timestamp": format_timestamp(p[3])} for p in points], downsampled


def summary_of(series: MetricSeries) -> dict:
    return {
        "min": series.min_value,
        "max": series.max_value,
        "avg": (series.sum_value / series.count) if series.count else None,
        "last": series.last_value,
        "count": series.count,
    }


def _read_plan(count: int, max_points: int, buckets: int) -> tuple[str, int | None]:
    """How ``read_series`` reads a series of ``count`` points: whole, from raw points or blocks."""
    if count <= max_points:
        return "whole", None
    level = _choose_level(count, buckets)
    return ("raw", None) if level is None else ("blocks", level)


def metrics_version(experiment) -> str:
    """What ``GET metrics`` shows changes only when a batch lands or a series comes or
    goes: the number of series, their points and the highest series id say which state
    it is (points are only appended; a new series raises the highest id, a removed one
    lowers the number). Progress, logs and lifecycle events leave it alone, so a body
    cached under it survives them (``experiments/response_cache.py``)."""
    row = MetricSeries.objects.filter(run__experiment=experiment).aggregate(
        series=models.Count("id"), points=models.Sum("count"), top=models.Max("id")
    )
    return f"{row['series']}.{row['points'] or 0}.{row['top'] or 0}"


def _series_key(series: MetricSeries, max_points: int) -> str:
    # The run's public id is random: a key never names another run's series, even where
    # SQLite hands a deleted row's primary key to a new one.
    return f"metric-series:{series.run.public_id}:{series.pk}:{series.count}:{max_points}"


def _read_series_cached(all_series: list[MetricSeries], max_points: int) -> list[tuple]:
    """(series, points as rendered JSON, downsampled) for each series, in order.

    A series' downsampled points are fixed by its point count and ``max_points``: points
    are only appended, and each append raises the count. So each series' rendered points
    are cached under (series, count, max_points) in the ``responses`` cache, and a batch
    that lands on one run recomputes that run's series only, not the experiment's. A
    series read while a batch commits may hold more points than its key says: newer than
    its key, never older."""
    cache = caches["responses"]
    keys = {s.pk: _series_key(s, max_points) for s in all_series}
    found = cache.get_many(list(keys.values())) if all_series else {}
    missing = [s for s in all_series if keys[s.pk] not in found]
    if missing:
        if connection.vendor == "postgresql":
            # Every missing series in at most three queries, downsampled by the database.
            buckets = max(1, max_points // 2)
            plans = {s.pk: _read_plan(s.count, max_points, buckets) for s in missing}
            read = read_many([(s.pk, *plans[s.pk], s.count) for s in missing], buckets)
            fresh = {s.pk: (read[s.pk], plans[s.pk][0] != "whole") for s in missing}
        else:
            fresh = {s.pk: read_series(s, max_points) for s in missing}
        rendered = {keys[pk]: (orjson.dumps(points), downsampled) for pk, (points, downsampled) in fresh.items()}
        cache.set_many(rendered)
        found.update(rendered)
    return [(s, orjson.Fragment(found[keys[s.pk]][0]), found[keys[s.pk]][1]) for s in all_series]


def experiment_metrics(experiment, *, name: str | None, run_id: str | None, max_points: int) -> dict:
    queryset = (
        MetricSeries.objects.filter(run__experiment=experiment)
        .select_related("run")
        .order_by("run__created_at", "run__id", "name")
    )
    if name:
        queryset = queryset.filter(name=name)
    if run_id:
        queryset = queryset.filter(run__public_id=run_id)
    all_series = list(queryset)
    series_body: dict[str, dict] = {}
    summary_body: dict[str, dict] = {}
    downsampled_any = False
    results = _read_series_cached(all_series, max_points)
    for series, points, downsampled in results:
        downsampled_any |= downsampled
        series_body.setdefault(series.run.public_id, {})[series.name] = points
        summary_body.setdefault(series.run.public_id, {})[series.name] = summary_of(series)
    return {
        "experiment_id": experiment.public_id,
        "max_points": max_points,
        "downsampled": downsampled_any,
        "series": series_body,
        "summary": summary_body,
    }
