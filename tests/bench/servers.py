"""Shared by the benchmark scripts: the PostgreSQL database, daphne processes, statistics.

Nothing here imports Django: the scripts set ``DATABASE_URL`` first and call
``setup_django()`` themselves, and the load-generating client processes never load it.
"""

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DEFAULT_DATABASE = "bench_research"


def database_url(name: str) -> str:
    return f"{PG_SERVER}/{name}"


def server_env(database: str) -> dict[str, str]:
    """The environment of a production-like server: DEBUG off (no query log), PostgreSQL."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url(database),
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "DJANGO_BEHIND_TLS_PROXY": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("REDIS_URL", None)
    return env


def ensure_database(name: str, *, fresh: bool = False) -> None:
    """Create (or, with ``fresh``, re-create) a PostgreSQL database on the bench server."""
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate(database: str) -> None:
    subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=server_env(database),
        check=True,
    )


def setup_django(database: str) -> None:
    """Load Django in this process against the bench database (same settings as the server)."""
    os.environ.update(server_env(database))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "research_site.settings")
    os.environ["BACKGROUND_TASKS"] = "0"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def stop_process(process: subprocess.Popen, *, timeout: float = 15.0) -> None:
    """Stop a server we started, with its children (it runs in its own process group)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def daphne_servers(database: str, count: int = 1, *, log_dir: Path | None = None) -> Iterator[list]:
    """``count`` daphne processes, each on its own port; yields [(port, Popen), …]."""
    log_dir = log_dir or Path(tempfile.gettempdir())
    started = []
    try:
        for _ in range(count):
            port = free_port()
            log = open(log_dir / f"bench-daphne-{port}.log", "wb")  # noqa: SIM115 (kept open while it runs)
            process = subprocess.Popen(
                [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "research_site.asgi:application"],
                cwd=ROOT,
                env=server_env(database),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            started.append((port, process, log))
        for port, process, _log in started:
            wait_for_port(port, process=process)
        yield [(port, process) for port, process, _log in started]
    finally:
        for _port, process, log in started:
            stop_process(process)
            log.close()


class CpuMeter:
    """CPU seconds used by the server processes and their PostgreSQL backends meanwhile.

    On a machine shared with other work, wall-clock throughput says little; the CPU the
    server side spends per point does not depend on who else runs. PostgreSQL backends
    are found by their process title, which names the database they serve.
    """

    def __init__(self, pids: list[int], database: str | None):
        self.pids = pids
        self.database = database
        self.start = self._times()

    def _processes(self):
        import psutil

        found = {}
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                found[pid] = process
                for child in process.children(recursive=True):
                    found[child.pid] = child
        if self.database:
            for process in psutil.process_iter(["name", "cmdline"]):
                title = " ".join(process.info.get("cmdline") or [])
                if title.startswith("postgres: ") and f" {self.database} " in title:
                    found[process.pid] = process
        return found

    def _times(self) -> dict[int, float]:
        import psutil

        times = {}
        for pid, process in self._processes().items():
            with contextlib.suppress(psutil.Error):
                cpu = process.cpu_times()
                times[pid] = cpu.user + cpu.system
        return times

    def seconds(self) -> float:
        end = self._times()
        return sum(max(0.0, end[pid] - self.start.get(pid, 0.0)) for pid in end)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0–100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms),
        "mean": statistics.fmean(ms),
    }


def prepare_database(database: str) -> None:
    """Create (if needed) and migrate the benchmark's PostgreSQL database, and point this
    process's Django at it."""
    ensure_database(database)
    migrate(database)
    setup_django(database)


def machine_line() -> str:
    import platform

    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import psutil

    busy = psutil.cpu_percent(interval=2.0)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.platform()}; "
        f"before the run: CPU {busy:.0f}% busy, load average {load}"
    )


def print_table(headers: list[str], rows: list[list]) -> None:
    """A Markdown table on stdout, ready to paste into docs/BENCHMARKS.md."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
