"""What ``realtime`` provides to this app without being imported by it.

``experiments`` and ``agents`` never import ``realtime`` (STYLE.md): realtime depends on
them. The few things they need from it (the socket count for ``GET status``, the event
store for exports) are plugged in here by ``realtime.apps.RealtimeConfig.ready``.
"""

from collections.abc import Callable, Iterator


def _no_events(experiment_id: str) -> Iterator[dict]:
    return iter(())


# () -> live sockets across all processes
connection_counter: Callable[[], int] = lambda: 0  # noqa: E731
# (experiment public id) -> its stored events as contract payloads, in seq order
experiment_events: Callable[[str], Iterator[dict]] = _no_events
# (experiment public id) -> how many events it has stored
experiment_event_count: Callable[[str], int] = lambda experiment_id: 0  # noqa: E731
# (experiment public id) -> its current seq: the version of everything shown about it
experiment_seq: Callable[[str], int] = lambda experiment_id: 0  # noqa: E731
