"""Large read bodies (results, metric series) cached by the experiment's seq.

Everything these bodies show changes only through a change that records an event, and
every event moves the experiment's ``seq``. So a body computed at seq N is right for
anyone who asks while the seq is still N: dashboards opening together, or polling while
nothing happens, share one computation. A body is computed after its seq is read, so it
can only be newer than its key, never older. What is cached is the rendered JSON,
embedded in the response as it is (``orjson.Fragment``).

Metric bodies depend on less than every event: they are keyed by the experiment's metrics
version instead (``agents.metric_reads.metrics_version``: series, points, highest series id),
so progress and log events, many a second in a live experiment, do not invalidate them.

Two things move with time rather than with events: the durations of runs still going.
Cached bodies say when they were computed (``as_of``), and durations run up to it.
"""

from collections.abc import Callable

import orjson
from django.core.cache import caches

from experiments import providers
from experiments.api.renderers import dumps
from experiments.models import Experiment

MAX_CACHED_BYTES = 16 * 1024 * 1024


def cached_body(
    experiment: Experiment,
    kind: str,
    params: tuple,
    compute: Callable[[], dict],
    version: Callable[[], str] | None = None,
) -> orjson.Fragment:
    """``compute()``'s JSON, cached under the experiment's seq, or under ``version()`` for
    a body that depends on less than every event (read before computing, like the seq)."""
    state = version() if version is not None else providers.experiment_seq(experiment.public_id)
    key = f"{kind}:{experiment.public_id}:{state}:" + ":".join(str(p) for p in params)
    cache = caches["responses"]
    body = cache.get(key)
    if body is None:
        body = dumps(compute())
        if len(body) <= MAX_CACHED_BYTES:
            cache.set(key, body)
    return orjson.Fragment(body)
