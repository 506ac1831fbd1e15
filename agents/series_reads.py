"""Downsampled series of many metrics at once, computed by PostgreSQL in one query per kind.

``agents.metric_reads.read_series`` reads one series and downsamples it in Python: a query per
series, and every candidate point's timestamp parsed and formatted. On PostgreSQL,
``read_many`` does the same for all the series of a request with at most three queries
(series read whole, series bucketized from their raw points, series bucketized from a
level of the block pyramid) and returns only the kept points, timestamps already in the
contract's format. The rules are exactly those of ``read_series`` (``tests/agents``
compares the two):

* units (a block's min and max point, or a raw point as its own min and max) in order
  ``i = 0 … n-1`` fall in bucket ``b = ((i + 1) * buckets - 1) // n``, which is the bucket
  ``b`` with ``b * n // buckets <= i < (b + 1) * n // buckets`` of ``_bucketize``;
* each bucket keeps its lowest min point and its highest max point, the first unit winning
  a tie, like Python's ``min``/``max``; a point kept twice appears once;
* points are ordered by step, then by arrival.
"""

from django.db import connection

from agents.models import MetricBlock, MetricPoint

# format_timestamp() in SQL: UTC, ISO 8601, microseconds only when there are any, "Z".
_TS = (
    "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
    "CASE WHEN date_trunc('second', {c} AT TIME ZONE 'UTC') = {c} AT TIME ZONE 'UTC' "
    "THEN '' ELSE to_char({c} AT TIME ZONE 'UTC', '.US') END || 'Z'"
)

_WHOLE_SQL = (
    "SELECT series_id, step, value, " + _TS.format(c="timestamp") + " FROM {points} "
    "WHERE series_id = ANY(%s) ORDER BY series_id, step, idx"
)

# Units of each wanted series: ``u`` has series_id, i, n and the min and max point.
_BUCKETIZE_SQL = (
    "WITH u AS ({units}), "
    "b AS (SELECT u.*, ((u.i + 1) * %s - 1) / u.n AS bucket FROM u), "
    "low AS (SELECT DISTINCT ON (series_id, bucket) series_id, min_idx AS idx, min_step AS step, "
    "min_value AS value, min_ts AS ts FROM b ORDER BY series_id, bucket, min_value, i), "
    "high AS (SELECT DISTINCT ON (series_id, bucket) series_id, max_idx, max_step, max_value, max_ts "
    "FROM b ORDER BY series_id, bucket, max_value DESC, i), "
    "kept AS (SELECT * FROM low UNION SELECT * FROM high) "
    "SELECT series_id, step, value, " + _TS.format(c="ts") + " FROM kept ORDER BY series_id, step, idx"
)

# A series' points are numbered 0 … count-1 by arrival (``idx``), and its blocks at level L
# 0 … ceil(count / 4**L)-1, with no gaps: ``idx`` or ``block`` is the unit's position ``i``
# and ``n`` is known without counting. ``want`` carries (series id, level, n).
_RAW_UNITS = (
    "SELECT p.series_id, p.idx AS i, want.n, "
    "p.idx AS min_idx, p.step AS min_step, p.value AS min_value, p.timestamp AS min_ts, "
    "p.idx AS max_idx, p.step AS max_step, p.value AS max_value, p.timestamp AS max_ts "
    "FROM {points} p JOIN unnest(%s::bigint[], %s::bigint[]) AS want(series_id, n) "
    "ON p.series_id = want.series_id"
)

_BLOCK_UNITS = (
    "SELECT k.series_id, k.block AS i, want.n, "
    "k.min_idx, k.min_step, k.min_value, k.min_ts, k.max_idx, k.max_step, k.max_value, k.max_ts "
    "FROM {blocks} k JOIN unnest(%s::bigint[], %s::smallint[], %s::bigint[]) AS want(series_id, level, n) "
    "ON k.series_id = want.series_id AND k.level = want.level"
)


def _collect(sql: str, params: list, into: dict[int, list]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for series_id, step, value, timestamp in cursor.fetchall():
            into[series_id].append({"step": step, "value": value, "timestamp": timestamp})


def read_many(plans: list[tuple[int, str, int | None, int]], buckets: int) -> dict[int, list[dict]]:
    """Points per series id; a plan is (series id, "whole" | "raw" | "blocks", level, count)."""
    points = MetricPoint._meta.db_table
    blocks = MetricBlock._meta.db_table
    out: dict[int, list[dict]] = {plan[0]: [] for plan in plans}
    whole = [pk for pk, mode, _level, _count in plans if mode == "whole"]
    raw = [(pk, count) for pk, mode, _level, count in plans if mode == "raw"]
    leveled = [(pk, level, -(-count // 4**level)) for pk, mode, level, count in plans if mode == "blocks"]
    if whole:
        _collect(_WHOLE_SQL.format(points=points), [whole], out)
    if raw:
        units = _RAW_UNITS.format(points=points)
        _collect(_BUCKETIZE_SQL.format(units=units), [*map(list, zip(*raw, strict=True)), buckets], out)
    if leveled:
        units = _BLOCK_UNITS.format(blocks=blocks)
        _collect(_BUCKETIZE_SQL.format(units=units), [*map(list, zip(*leveled, strict=True)), buckets], out)
    return out
