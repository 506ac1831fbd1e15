"""PostgreSQL downsamples in SQL (agents/series_reads.py) exactly as read_series does in Python."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from agents import metric_reads, metrics
from agents.lifecycle import lock_run
from agents.models import MetricSeries
from agents.series_reads import read_many
from tests import services
from tests.factories import make_user, started_experiment

BASE = datetime(2026, 1, 1, tzinfo=UTC)
COUNTS = (1, 7, 499, 500, 501, 997, 1003, 4100)
MAX_POINTS = (2, 3, 10, 11, 500, 999, 1000, 1001, 10_000)


def _store(run, name: str, count: int, value) -> None:
    rng = random.Random(count)
    points = [
        metrics.Point(
            name,
            value(i, rng),
            i // 2,  # repeated steps: order by step, then arrival
            BASE + timedelta(seconds=i, microseconds=0 if i % 3 else rng.randint(0, 999_999)),
        )
        for i in range(count)
    ]
    for first in range(0, count, metrics.MAX_POINTS_PER_CALL):
        with transaction.atomic():
            metrics.store_points(lock_run(run), points[first : first + metrics.MAX_POINTS_PER_CALL], BASE)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sql_downsampling_returns_what_read_series_returns():
    services.require_test_database_on_postgres()
    _experiment, issued = started_experiment(make_user("series-owner"), agents=1)
    run = issued[0].run
    shapes = {
        "flat": lambda i, rng: 1.0,  # every point ties
        "steps": lambda i, rng: float(rng.randint(0, 5)),  # many ties
        "noise": lambda i, rng: rng.uniform(-1e6, 1e6),
    }
    for shape, value in shapes.items():
        for count in COUNTS:
            _store(run, f"{shape}-{count}", count, value)
    series = list(MetricSeries.objects.filter(run=run).order_by("name"))
    for max_points in MAX_POINTS:
        buckets = max(1, max_points // 2)
        plans = [(s.pk, *metric_reads._read_plan(s.count, max_points, buckets), s.count) for s in series]
        read = read_many(plans, buckets)
        for s, (_pk, mode, _level, _count) in zip(series, plans, strict=True):
            expected, downsampled = metric_reads.read_series(s, max_points)
            assert read[s.pk] == expected, (s.name, max_points, mode)
            assert downsampled == (mode != "whole")
