"""Starting the servers under test as child processes, and reading their memory."""

import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_fd_limit() -> None:
    """Children inherit it: thousands of sockets need thousands of descriptors."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Server:
    process: subprocess.Popen
    http_url: str
    ws_url: str
    kind: str

    def rss_bytes(self) -> int:
        return psutil.Process(self.process.pid).memory_info().rss

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error status: it answers
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def start_daphne(*, env: dict, port: int | None = None, max_frame: int = 65536) -> Server:
    raise_fd_limit()
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "daphne",
        "-v",
        "0",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "--websocket-max-frame-size",
        str(max_frame),
        "--websocket-max-message-size",
        str(max_frame),
        "research_site.asgi:application",
    ]
    process = subprocess.Popen(  # noqa: S603
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=None,
    )
    base = f"http://127.0.0.1:{port}"
    _wait_for(base + "/health", process)
    return Server(process, base, f"ws://127.0.0.1:{port}", "daphne")


def start_bare(port: int | None = None) -> Server:
    raise_fd_limit()
    port = port or free_port()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "realtime.loadtest.bare_server", "--port", str(port)],
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        time.sleep(0.1)
    return Server(process, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", "bare")
