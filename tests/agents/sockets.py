"""The agent socket in tests: a ``WebsocketCommunicator`` on the real ASGI application."""

import asyncio
import contextlib
import json

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from research_site.asgi import application

RECEIVE_TIMEOUT = 5.0


def agent_path(run_id: str) -> str:
    return f"/ws/research/agents/{run_id}/"


class AgentSocket:
    def __init__(self, communicator: WebsocketCommunicator, accepted: bool):
        self.communicator = communicator
        self.accepted = accepted

    async def recv(self, timeout: float = RECEIVE_TIMEOUT) -> dict:
        """The next message that is not a heartbeat."""
        while True:
            message = await self.communicator.receive_json_from(timeout=timeout)
            if message.get("type") != "heartbeat":
                return message

    async def send(self, payload) -> None:
        await self.communicator.send_json_to(payload)

    async def request(self, payload, timeout: float = RECEIVE_TIMEOUT) -> dict:
        """Send a report and return its answer (ack or error)."""
        await self.send(payload)
        return await self.recv(timeout)

    async def control(self, timeout: float = RECEIVE_TIMEOUT) -> dict:
        message = await self.recv(timeout)
        assert message["type"] == "control", message
        return message

    async def silent(self, seconds: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout=seconds)

    async def messages_until_close(self, timeout: float = RECEIVE_TIMEOUT) -> tuple[list[dict], int]:
        messages = []
        while True:
            output = await self.communicator.receive_output(timeout)
            if output["type"] == "websocket.close":
                return messages, output.get("code", 1000)
            messages.append(json.loads(output["text"]))


class AgentSockets:
    """Opens agent sockets and closes all of them (and the test loop's hub) at the end."""

    def __init__(self):
        self.opened: list[WebsocketCommunicator] = []

    async def open(self, run_id: str, authorization: str | None) -> AgentSocket:
        headers = [(b"host", b"testserver")]
        if authorization is not None:
            headers.append((b"authorization", authorization.encode()))
        communicator = WebsocketCommunicator(application, agent_path(run_id), headers=headers)
        self.opened.append(communicator)
        accepted, _detail = await communicator.connect(timeout=RECEIVE_TIMEOUT)
        return AgentSocket(communicator, accepted)

    async def close_all(self) -> None:
        for communicator in self.opened:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await communicator.disconnect(timeout=2)
        from realtime.hub import _hubs

        hub = _hubs.pop(asyncio.get_running_loop(), None)
        if hub is not None:
            await hub.stop()


def in_thread(function, /, *args, **kwargs):
    """Run synchronous code (a request, a service) off the loop, as daphne does."""
    return database_sync_to_async(function)(*args, **kwargs)
