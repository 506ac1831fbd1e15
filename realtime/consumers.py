"""WebSocket consumers: protocol in, calls into ``realtime/`` modules, protocol out.

``DashboardConsumer`` serves ``/ws/research/`` (multiplexed) and
``/ws/research/experiments/<id>/``; ``AgentConsumer`` serves an agent's own socket
``/ws/research/agents/<run_id>/``. Neither has a channel-layer channel of its own: the
process hub (``realtime/hub.py``) is the layer member and hands them what they follow.
docs/websocket.md is the protocol; close codes: 4401 not authenticated, 4403 forbidden,
4404 experiment deleted, 4408 flood, 4409 too slow to read.
"""

import logging

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from experiments import runtime_config
from realtime import snapshot
from realtime.hub import get_hub
from realtime.messages import MessageError, decode, message_id, parse_client_message
from realtime.outbox import CLOSE_TOO_SLOW, Outbox
from realtime.store import encode
from realtime.streams import SocketStream
from realtime.tasks import spawn
from realtime.throttle import CLOSE_FLOOD, TokenBucket

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_GONE = 4404
SLOW_CLIENT_CLOSE_SECONDS = 10.0


class BaseSocket(AsyncWebsocketConsumer):
    """What both sockets share: the outbox, limits, heartbeats, a clean goodbye."""

    # No such layer is configured, so the consumer gets no channel of its own.
    channel_layer_alias = "realtime.hub-only"

    outbox: Outbox | None = None
    closing = False

    async def _open_outbox(self) -> None:
        # The runtime config may need a database read: never on the event loop.
        rate = await database_sync_to_async(runtime_config.get)("ws_messages_per_second")
        self.bucket = TokenBucket(rate)
        self.outbox = Outbox(
            self.base_send,
            max_queue=settings.REALTIME["MAX_OUTGOING_QUEUE"],
            on_overflow=self._too_slow,
        )

    async def send_json(self, payload: dict) -> None:
        await self.outbox.send(encode(payload))

    async def close_with(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            await self.close(code=code)
            if self.outbox is not None:
                # Nothing more after the close frame (events, heartbeats) while the
                # client's goodbye is on its way.
                self.outbox.closed = True

    def _too_slow(self) -> None:
        logger.info("closing a socket that does not read (%s)", self.scope.get("client"))
        self.outbox.give_slow_client_time(SLOW_CLIENT_CLOSE_SECONDS)
        spawn(self.close_with(CLOSE_TOO_SLOW))

    @property
    def last_sent(self) -> float:
        return self.outbox.last_sent if self.outbox else float("inf")

    def set_message_rate(self, rate_per_second: float) -> None:
        if self.outbox is not None:
            self.bucket.set_rate(rate_per_second)

    def send_heartbeat(self, text: str) -> None:
        if self.outbox is not None and not self.outbox.send_now(text):
            spawn(self.outbox.send(text))

    async def _admit(self, text_data, bytes_data) -> object | None:
        """Rate-limit and decode a client frame; None when it was answered or refused."""
        if not self.bucket.take():
            await self.close_with(CLOSE_FLOOD)
            return None
        try:
            return decode(text_data, bytes_data, settings.REALTIME["MAX_MESSAGE_BYTES"])
        except MessageError as exc:
            await self.send_json(exc.payload())
            return None

    async def dispatch(self, message):
        """Channels' dispatch, without its hop to the sync thread before every message to
        close stale database connections: every database access here goes through
        ``database_sync_to_async``, which closes them itself, and a socket's frames should
        not queue behind other sockets' database work."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_receive(self, message):
        if self.closing or self.outbox is None:
            return
        await self.receive(text_data=message.get("text"), bytes_data=message.get("bytes"))

    async def websocket_disconnect(self, message):
        self.closing = True
        await self.cleanup()
        raise StopConsumer()

    async def cleanup(self) -> None:
        if self.outbox is not None:
            self.outbox.detach()


class DashboardConsumer(BaseSocket):
    stream: SocketStream | None = None

    async def websocket_connect(self, message):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            self.closing = True
            return
        experiment_id = self.scope["url_route"]["kwargs"].get("experiment_id")
        multiplexed = experiment_id is None
        await self.accept()
        await self._open_outbox()
        hub = get_hub()
        self.stream = SocketStream(
            user=user, outbox=self.outbox, hub=hub, multiplexed=multiplexed, on_forbidden=self._forbidden
        )
        await hub.add_socket(self)
        if multiplexed:
            await self.stream.open_global()
            return
        since = self._query_param("since")
        if not await self.stream.open_experiment_path(experiment_id, since):
            await self.send_json(
                {
                    "type": "error",
                    "code": "forbidden",
                    "detail": "No such experiment, or not one you may see.",
                }
            )
            await self.close_with(CLOSE_FORBIDDEN)

    def _query_param(self, name: str) -> str | None:
        from realtime.auth import query_param

        return query_param(self.scope, name)

    async def receive(self, text_data=None, bytes_data=None):
        data = await self._admit(text_data, bytes_data)
        if data is None:
            return
        try:
            request = parse_client_message(data)
        except MessageError as exc:
            await self.send_json(exc.payload())
            return
        if request.type == "ping":
            reply = {"type": "pong"}
            if request.id is not None:
                reply["id"] = request.id
            await self.send_json(reply)
        elif request.type == "subscribe":
            if request.experiment_id is None:
                if not self.stream.multiplexed:
                    await self.send_json(
                        {
                            "type": "error",
                            "code": "bad_request",
                            "detail": "The global stream is on /ws/research/.",
                        }
                    )
                    return
                await self.stream.subscribe_global(
                    since=request.since, run_ids=request.run_ids, event_types=request.event_types
                )
            else:
                await self.stream.subscribe_experiment(
                    request.experiment_id,
                    since=request.since,
                    run_ids=request.run_ids,
                    event_types=request.event_types,
                )
        elif request.type == "unsubscribe":
            removed = await self.stream.unsubscribe(request.experiment_id)
            reply = {
                "type": "unsubscribed",
                "experiment_id": request.experiment_id,
                "was_subscribed": removed,
            }
            await self.send_json(reply)

    async def _forbidden(self, experiment_id: str, deleted: bool) -> None:
        detail = "The experiment was deleted." if deleted else "You are no longer a member of this experiment."
        await self.send_json(
            {
                "type": "error",
                "code": "not_found" if deleted else "forbidden",
                "detail": detail,
                "experiment_id": experiment_id,
            }
        )
        if not self.stream.multiplexed:
            await self.close_with(CLOSE_GONE if deleted else CLOSE_FORBIDDEN)

    async def cleanup(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream.hub.remove_socket(self, system_stream=self.stream)
        await super().cleanup()


class AgentConsumer(BaseSocket):
    """An agent's own socket: its reports in, control messages out."""

    run_pk: int | None = None
    run_id: str | None = None
    token_hash: str | None = None

    async def websocket_connect(self, message):
        from agents.api.authentication import run_from_authorization

        run_id = self.scope["url_route"]["kwargs"]["run_id"]
        from realtime.auth import header

        run = await database_sync_to_async(run_from_authorization)(header(self.scope, b"authorization"))
        await self.accept()
        if run is None or run.public_id != run_id:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            self.closing = True
            return
        # The token's hash: a token re-issued while this socket is open stops its reports.
        self.run_pk, self.run_id, self.token_hash = run.pk, run.public_id, run.token_hash
        await self._open_outbox()
        self.control_state = {"stop_sent": False, "decided_round": None}
        self.hub = get_hub()
        await self.hub.attach_agent(self, run_id)
        body = await database_sync_to_async(snapshot.run_snapshot)(run.pk)
        await self.send_json(body)
        run_body = body["run"]
        self._note_state(run_body["status"], run_body.get("approval"))

    def _note_state(self, status: str, approval: dict | None) -> None:
        # What the agent already knows from its snapshot needs no control message later.
        if status in ("stopped", "failed", "completed"):
            self.control_state["stop_sent"] = True
        if approval and approval.get("state") not in (None, "pending"):
            self.control_state["decided_round"] = approval.get("requested_at")

    async def receive(self, text_data=None, bytes_data=None):
        from agents.reports import REPORT_KINDS, handle_report_in_thread

        data = await self._admit(text_data, bytes_data)
        if data is None:
            return
        msg_id = message_id(data)
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong", **({"id": msg_id} if msg_id is not None else {})})
            return
        if kind not in REPORT_KINDS:
            await self.send_json(
                MessageError(
                    "unknown_type", f"Unknown report type; use one of: {', '.join(REPORT_KINDS)}.", msg_id
                ).payload()
            )
            return
        body = {k: v for k, v in data.items() if k not in ("type", "id", "idempotency_key")}
        key = data.get("idempotency_key")
        status, response = await database_sync_to_async(handle_report_in_thread)(
            run_pk=self.run_pk,
            kind=kind,
            data=body,
            idempotency_key=key if isinstance(key, str) else None,
            token_hash=self.token_hash,
        )
        if status == 200:
            reply = {"type": "ack"}
            if isinstance(response, dict) and "accepted" in response:
                reply["accepted"] = response["accepted"]
        else:
            reply = {
                "type": "error",
                "code": response.get("error", "error"),
                "detail": response.get("detail", ""),
            }
            if "fields" in response:
                reply["fields"] = response["fields"]
        if msg_id is not None:
            reply["id"] = msg_id
        await self.send_json(reply)
        if status == 401:
            await self.close_with(CLOSE_UNAUTHENTICATED)

    async def push_control(self, control: dict, round_key=None) -> None:
        if self.closing or self.outbox is None:
            return
        action = control.get("action")
        if action == "stop":
            if self.control_state["stop_sent"]:
                return
            self.control_state["stop_sent"] = True
        elif action in ("approved", "rejected") and round_key is not None:
            if self.control_state["decided_round"] == round_key:
                return
            self.control_state["decided_round"] = round_key
        await self.send_json(control)

    async def reconcile(self, status: str, approval: dict | None) -> None:
        """Send what a lost control message would have told the agent (hub sweep)."""
        approval = approval or {}
        state = approval.get("state")
        round_key = approval.get("requested_at")
        decided = state in ("approved", "rejected", "revision_requested")
        if decided and round_key and self.control_state["decided_round"] != round_key:
            control = {"type": "control", "action": "approved" if state == "approved" else "rejected"}
            if state != "approved":
                control["revise"] = state == "revision_requested"
            if approval.get("feedback"):
                control["feedback"] = approval["feedback"]
            await self.push_control(control, round_key)
        if status == "stopped" or (status == "failed" and state == "timed_out"):
            await self.push_control({"type": "control", "action": "stop", "reason": "reconciled"})

    async def cleanup(self) -> None:
        if self.run_id is not None:
            self.hub.detach_agent(self, self.run_id)
        await super().cleanup()
