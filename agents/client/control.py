"""The agent socket, listened to by a background thread: the run snapshot on connect, then
control messages (``stop``, ``approved``, ``rejected``) the moment an operator decides.

The thread reconnects with backoff whenever the connection drops; each new connection
starts with a fresh snapshot of the run, so a decision made while it was away is still
seen. A close with 4401 (the token is wrong or was revoked) ends it for good.
"""

import json
import logging
import threading
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

logger = logging.getLogger("research_engine.client")

CLOSE_UNAUTHENTICATED = 4401


def socket_url(base_url: str, run_id: str) -> str:
    parts = urlsplit(base_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, f"{parts.path}/ws/research/agents/{run_id}/", "", ""))


class ControlListener:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        on_message: Callable[[dict], None],
        on_unauthorized: Callable[[], None],
        open_timeout: float = 10.0,
        max_backoff: float = 10.0,
    ):
        self.url = url
        self._token = token
        self._on_message = on_message
        self._on_unauthorized = on_unauthorized
        self._open_timeout = open_timeout
        self._max_backoff = max_backoff
        self._closing = threading.Event()
        self.connected = threading.Event()
        self._connection = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="research-engine-control", daemon=True)
        self._thread.start()

    def close(self, timeout: float | None = 5.0) -> None:
        self._closing.set()
        with self._lock:
            connection = self._connection
        if connection is not None:
            try:
                connection.close()
            except Exception:  # already closing: nothing to do
                logger.debug("agent socket close failed", exc_info=True)
        self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.5
        while not self._closing.is_set():
            try:
                with connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    open_timeout=self._open_timeout,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                    proxy=None,
                ) as connection:
                    with self._lock:
                        self._connection = connection
                    if self._closing.is_set():
                        return
                    for text in connection:
                        if not self.connected.is_set():
                            self.connected.set()
                            delay = 0.5
                        self._dispatch(text)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code == CLOSE_UNAUTHENTICATED:
                    logger.error("the agent socket refused the run token (4401)")
                    self._on_unauthorized()
                    return
                logger.info("agent socket closed (%s); reconnecting", code)
            except InvalidStatus as exc:
                if exc.response.status_code in (401, 403):
                    logger.error("the agent socket refused the run token (%s)", exc.response.status_code)
                    self._on_unauthorized()
                    return
                logger.info("agent socket handshake failed (%s); retrying", exc.response.status_code)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                logger.info("agent socket unavailable (%s); retrying", type(exc).__name__)
            finally:
                self.connected.clear()
                with self._lock:
                    self._connection = None
            if self._closing.wait(delay):
                return
            delay = min(self._max_backoff, delay * 2)

    def _dispatch(self, text) -> None:
        try:
            message = json.loads(text)
        except (TypeError, ValueError):
            return
        if isinstance(message, dict):
            try:
                self._on_message(message)
            except Exception:
                logger.exception("handling an agent socket message failed")
