"""Sockets against the real ASGI application, and changes through the real services.

``ws`` opens a ``WebsocketCommunicator`` on ``research_site.asgi.application`` (origin
check, cookie/session and socket auth included) and closes every socket it opened when the
test ends; the process hub of the test's event loop is stopped with them. ``produce``
runs a service function in the database thread, so its transaction commits and its
events are published from ``on_commit`` exactly as under daphne.
"""

import asyncio
import contextlib
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from research_site.asgi import application
from tests.factories import token_for

RECEIVE_TIMEOUT = 5.0


class Socket:
    """A connected (or refused) test socket with JSON helpers."""

    def __init__(self, communicator: WebsocketCommunicator, accepted: bool, detail):
        self.communicator = communicator
        self.accepted = accepted
        # On refusal, the close code of the handshake; else the chosen subprotocol.
        self.handshake_close_code = None if accepted else detail

    async def recv(self, timeout: float = RECEIVE_TIMEOUT) -> dict:
        return await self.communicator.receive_json_from(timeout=timeout)

    async def recv_type(self, kind: str, timeout: float = RECEIVE_TIMEOUT) -> dict:
        message = await self.recv(timeout)
        assert message["type"] == kind, message
        return message

    async def send(self, payload) -> None:
        await self.communicator.send_json_to(payload)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def closed_with(self, timeout: float = RECEIVE_TIMEOUT) -> int:
        """The close code of the next output, which must be a close."""
        output = await self.communicator.receive_output(timeout)
        assert output["type"] == "websocket.close", output
        return output.get("code", 1000)

    async def messages_until_close(self, timeout: float = RECEIVE_TIMEOUT) -> tuple[list[dict], int]:
        """Every message up to the close, and the close code."""
        messages = []
        while True:
            output = await self.communicator.receive_output(timeout)
            if output["type"] == "websocket.close":
                return messages, output.get("code", 1000)
            messages.append(json.loads(output["text"]))

    async def silent(self, seconds: float = 0.2) -> bool:
        return await self.communicator.receive_nothing(timeout=seconds)

    async def events(self, count: int, timeout: float = RECEIVE_TIMEOUT, skip_heartbeats: bool = True):
        """The next ``count`` event messages (heartbeats skipped); fails on anything else."""
        received = []
        while len(received) < count:
            message = await self.recv(timeout)
            if skip_heartbeats and message["type"] == "heartbeat":
                continue
            assert message["type"] == "event", message
            received.append(message)
        return received

    async def events_through(self, experiment_id: str, seq: int, timeout: float = RECEIVE_TIMEOUT):
        """Events until ``experiment_id`` reaches ``seq`` (other experiments' included)."""
        received = []
        while True:
            message = await self.recv(timeout)
            if message["type"] == "heartbeat":
                continue
            assert message["type"] == "event", message
            received.append(message)
            if message["experiment_id"] == experiment_id and message["seq"] >= seq:
                return received


def auth_headers(user=None, *, origin: str | None = None, host: str | None = "testserver", extra=()):
    headers = []
    if host is not None:
        headers.append((b"host", host.encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if user is not None:
        headers.append((b"authorization", f"Token {token_for(user)}".encode()))
    headers.extend(extra)
    return headers


@pytest.fixture
async def ws():
    """``await ws(path, user=alice)``: a socket on the real application, closed at the end."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(path: str, user=None, *, origin=None, host="testserver", headers=()):
        built = await database_sync_to_async(auth_headers)(user, origin=origin, host=host, extra=headers)
        communicator = WebsocketCommunicator(application, path, headers=built)
        opened.append(communicator)
        accepted, detail = await communicator.connect(timeout=RECEIVE_TIMEOUT)
        return Socket(communicator, accepted, detail)

    yield open_socket

    for communicator in opened:
        # Already closed, or cancelled by a receive that timed out.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await communicator.disconnect(timeout=2)
    await stop_hub()


async def stop_hub() -> None:
    from realtime.hub import _hubs

    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.stop()


async def produce(function, /, **kwargs):
    """Run a service function (its own transaction) off the event loop, as a view would."""
    return await database_sync_to_async(function)(**kwargs)


@pytest.fixture
def realtime_settings(settings):
    """Short sweep and heartbeat intervals, so tests wait seconds, not minutes."""
    settings.REALTIME = {**settings.REALTIME, "SWEEP_SECONDS": 0.3}
    return settings.REALTIME


@database_sync_to_async
def experiment_for(owner, *, started: bool = False, members: dict | None = None, agents: int = 2, name="E"):
    """(experiment, [run, …]) through the real lifecycle services."""
    from tests.factories import make_experiment, started_experiment

    build = started_experiment if started else make_experiment
    experiment, issued = build(owner, members=members, agents=agents, name=name)
    return experiment, [item.run for item in issued]


async def report_progress(run, percent: float = 10.0, **kwargs):
    from agents import reporting

    return await produce(reporting.record_progress, run=run, progress_percent=percent, **kwargs)


@database_sync_to_async
def stored_events(experiment_id: str | None = None) -> list[dict]:
    from realtime.models import Event

    queryset = Event.objects.order_by("id")
    if experiment_id is not None:
        queryset = queryset.filter(experiment_id=experiment_id)
    return list(queryset.values("id", "seq", "event_type", "experiment_id", "run_id"))


@database_sync_to_async
def current_seq(experiment_id: str) -> int:
    from realtime.store import current_seq as read

    return read(experiment_id)
