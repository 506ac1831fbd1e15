"""A producer process for the two-process test: reports progress on its runs.

``python -m tests.realtime.multiprocess_producer <barrier dir> <name> <count> <run_id>…``
Run with the watcher's environment (same ``DATABASE_URL``). It says it is ready by
creating ``<name>.ready`` in the barrier directory, starts when ``go`` appears there,
keeps in step with the other producers (``<name>.<i>`` after its report i), and prints the
seqs it was given, as JSON.
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "research_site.settings")

import django

django.setup()

from agents import reporting  # noqa: E402
from agents.models import AgentRun  # noqa: E402
from realtime.models import Event  # noqa: E402


def main() -> None:
    barrier, name, count, *run_ids = sys.argv[1:]
    barrier = Path(barrier)
    runs = [AgentRun.objects.get(public_id=run_id) for run_id in run_ids]
    (barrier / f"{name}.ready").touch()
    deadline = time.monotonic() + 60
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal")
        time.sleep(0.005)
    peers = [p.name.removesuffix(".ready") for p in barrier.glob("*.ready") if p.name != f"{name}.ready"]
    for i in range(int(count)):
        reporting.record_progress(run=runs[i % len(runs)], progress_percent=float(i % 100))
        # Lockstep with the other producers: report i + 1 waits until each of them has
        # made report i, so their writes interleave however the machine schedules them.
        (barrier / f"{name}.{i}").touch()
        deadline = time.monotonic() + 60
        while not all((barrier / f"{peer}.{i}").exists() for peer in peers):
            if time.monotonic() > deadline:
                raise SystemExit(f"a peer never made report {i}")
            time.sleep(0.002)
    mine = Event.objects.filter(run_id__in=run_ids, event_type="agent_progress").order_by("seq")
    print(json.dumps({"name": name, "seqs": list(mine.values_list("seq", flat=True))}))


if __name__ == "__main__":
    main()
