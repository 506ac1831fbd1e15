"""Memory of the daphne process while it streams the 1,000,000-point experiment.

    .venv/bin/python -m tests.bench.export_memory [--formats json,csv,ndjson]

Uses the data set of ``tests/bench/dataset.py`` (built if missing) in ``bench_research``,
starts one daphne process, and for each format downloads ``POST /api/research/export/{id}``
(default ``include``: all four parts for JSON and NDJSON, ``metrics`` for CSV) with an
httpx streaming client that reads and discards the body, while a thread samples the
daphne process's RSS with psutil every 50 ms. Reports RSS before, peak during and after
each download, the bytes received and the rate.
"""

import argparse
import threading
import time

import httpx
import psutil

from tests.bench.servers import (
    DEFAULT_DATABASE,
    daphne_servers,
    machine_line,
    prepare_database,
    print_table,
)

MB = 1024 * 1024


class RssSampler(threading.Thread):
    """Largest resident set size of a process (and its children) while running."""

    def __init__(self, pid: int, every: float = 0.05):
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def rss(self) -> int:
        return self.process.memory_info().rss + sum(c.memory_info().rss for c in self.process.children(True))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.rss())
            self.samples += 1
            time.sleep(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def download(client: httpx.Client, url: str, fmt: str, pid: int) -> dict:
    sampler = RssSampler(pid)
    before = sampler.rss()
    sampler.start()
    received = 0
    t0 = time.perf_counter()
    with client.stream("POST", url, json={"format": fmt}) as response:
        if response.status_code != 200:
            response.read()
            raise RuntimeError(f"export {fmt}: {response.status_code} {response.text[:300]}")
        for chunk in response.iter_raw(64 * 1024):
            received += len(chunk)
    seconds = time.perf_counter() - t0
    sampler.stop()
    time.sleep(1.0)
    return {
        "format": fmt,
        "before": before,
        "peak": max(sampler.peak, before),
        "after": sampler.rss(),
        "bytes": received,
        "seconds": seconds,
        "samples": sampler.samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--formats", default="json,csv,ndjson")
    args = parser.parse_args()

    print(f"machine: {machine_line()}")
    prepare_database(args.database)
    from tests.bench.dataset import build

    experiment, token = build()
    results = []
    with daphne_servers(args.database, 1) as servers:
        port, process = servers[0]
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600) as client:
            # One small request first, so "before" is a process that has served the API.
            client.get(f"/api/research/results/{experiment.public_id}").raise_for_status()
            for fmt in args.formats.split(","):
                print(f"export {fmt} …", flush=True)
                results.append(download(client, f"/api/research/export/{experiment.public_id}", fmt, process.pid))
    print()
    print("RSS of the daphne process (MB), sampled every 50 ms during the download")
    print()
    print_table(
        ["format", "RSS before", "peak during", "after", "peak − before", "body", "seconds", "MB/s"],
        [
            [
                r["format"],
                f"{r['before'] / MB:.1f}",
                f"{r['peak'] / MB:.1f}",
                f"{r['after'] / MB:.1f}",
                f"{(r['peak'] - r['before']) / MB:+.1f}",
                f"{r['bytes'] / MB:,.1f} MB",
                f"{r['seconds']:.1f}",
                f"{r['bytes'] / MB / r['seconds']:.1f}",
            ]
            for r in results
        ],
    )


if __name__ == "__main__":
    main()
