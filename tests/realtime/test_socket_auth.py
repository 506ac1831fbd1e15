"""Who may open a dashboard socket: session, API token, single-use ticket; and from where."""

import asyncio
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone

from realtime.models import WsTicket
from tests.factories import PASSWORD, api_client, make_experiment

pytestmark = pytest.mark.django_db(transaction=True)

GLOBAL = "/ws/research/"


def experiment_path(experiment) -> str:
    return f"/ws/research/experiments/{experiment.public_id}/"


@database_sync_to_async
def session_cookie(user) -> bytes:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@database_sync_to_async
def new_ticket(user) -> dict:
    response = api_client(user).post("/api/research/ws-ticket")
    assert response.status_code == 200, response.content
    return response.json()


@database_sync_to_async
def new_experiment(owner):
    experiment, issued = make_experiment(owner)
    return experiment, issued


async def assert_refused_4401(socket) -> None:
    """Accepted so the client sees the code, then closed 4401 before any snapshot."""
    assert socket.accepted
    messages, code = await socket.messages_until_close()
    assert messages == []
    assert code == 4401


# Session ---------------------------------------------------------------------------------


async def test_session_cookie_opens_the_global_socket(ws, alice):
    cookie = await session_cookie(alice)
    socket = await ws(GLOBAL, headers=[(b"cookie", cookie)])
    assert socket.accepted
    snapshot = await socket.recv_type("snapshot")
    assert "last_event_id" in snapshot


async def test_session_cookie_opens_an_experiment_socket(ws, alice):
    experiment, _ = await new_experiment(alice)
    cookie = await session_cookie(alice)
    socket = await ws(experiment_path(experiment), headers=[(b"cookie", cookie)])
    snapshot = await socket.recv_type("snapshot")
    assert snapshot["experiment"]["id"] == experiment.public_id


async def test_logged_out_session_is_refused(ws, alice):
    cookie = await session_cookie(alice)

    @database_sync_to_async
    def log_out():
        from django.contrib.sessions.models import Session

        Session.objects.all().delete()

    await log_out()
    await assert_refused_4401(await ws(GLOBAL, headers=[(b"cookie", cookie)]))


async def test_made_up_session_cookie_is_refused(ws, db):
    await assert_refused_4401(await ws(GLOBAL, headers=[(b"cookie", b"sessionid=notasession")]))


# Token -------------------------------------------------------------------------------------


async def test_api_token_header_opens_the_socket(ws, alice):
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")


async def test_wrong_api_token_is_refused_even_with_a_valid_session(ws, alice):
    cookie = await session_cookie(alice)
    socket = await ws(GLOBAL, headers=[(b"cookie", cookie), (b"authorization", b"Token not-a-real-key")])
    await assert_refused_4401(socket)


async def test_token_of_a_deactivated_user_is_refused(ws, alice):
    @database_sync_to_async
    def deactivate():
        from tests.factories import token_for

        key = token_for(alice)
        alice.is_active = False
        alice.save(update_fields=["is_active"])
        return key

    key = await deactivate()
    socket = await ws(GLOBAL, headers=[(b"authorization", f"Token {key}".encode())])
    await assert_refused_4401(socket)


async def test_run_token_is_not_a_user_credential_on_dashboard_paths(ws, alice):
    experiment, issued = await new_experiment(alice)
    bearer = [(b"authorization", f"Bearer {issued[0].token}".encode())]
    await assert_refused_4401(await ws(GLOBAL, headers=bearer))
    await assert_refused_4401(await ws(experiment_path(experiment), headers=bearer))


# Ticket ------------------------------------------------------------------------------------


async def test_ticket_opens_the_socket_once(ws, alice):
    issued = await new_ticket(alice)
    assert issued["ticket"]
    assert issued["expires_at"].endswith("Z")
    first = await ws(f"{GLOBAL}?ticket={issued['ticket']}")
    await first.recv_type("snapshot")
    await assert_refused_4401(await ws(f"{GLOBAL}?ticket={issued['ticket']}"))


async def test_one_ticket_presented_by_two_sockets_at_once_lets_one_in(ws, alice):
    issued = await new_ticket(alice)
    path = f"{GLOBAL}?ticket={issued['ticket']}"
    sockets = await asyncio.gather(ws(path), ws(path))
    outcomes = []
    for socket in sockets:
        first = await socket.communicator.receive_output(timeout=5)
        if first["type"] == "websocket.close":
            outcomes.append(first["code"])
        else:
            outcomes.append(json.loads(first["text"])["type"])
    assert sorted(outcomes, key=str) == [4401, "snapshot"]


async def test_staff_may_open_any_experiment(ws, alice, staff):
    experiment, _ = await new_experiment(alice)
    socket = await ws(experiment_path(experiment), staff)
    snapshot = await socket.recv_type("snapshot")
    assert snapshot["experiment"]["id"] == experiment.public_id


async def test_ticket_works_on_the_experiment_path(ws, alice):
    experiment, _ = await new_experiment(alice)
    issued = await new_ticket(alice)
    socket = await ws(f"{experiment_path(experiment)}?ticket={issued['ticket']}")
    snapshot = await socket.recv_type("snapshot")
    assert snapshot["experiment"]["id"] == experiment.public_id


async def test_expired_ticket_is_refused(ws, alice):
    issued = await new_ticket(alice)

    @database_sync_to_async
    def expire():
        WsTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    await expire()
    await assert_refused_4401(await ws(f"{GLOBAL}?ticket={issued['ticket']}"))


async def test_unknown_ticket_is_refused_even_with_a_valid_token(ws, alice):
    await assert_refused_4401(await ws(f"{GLOBAL}?ticket=wst_made_up", alice))


async def test_ticket_needs_a_signed_in_user(db):
    response = await database_sync_to_async(lambda: api_client(None).post("/api/research/ws-ticket"))()
    assert response.status_code == 401


# No credentials ----------------------------------------------------------------------------


async def test_no_credentials_on_either_path_get_4401_and_no_snapshot(ws, alice):
    experiment, _ = await new_experiment(alice)
    await assert_refused_4401(await ws(GLOBAL))
    await assert_refused_4401(await ws(experiment_path(experiment)))


async def test_a_refused_socket_leaves_others_served(ws, alice):
    good = await ws(GLOBAL, alice)
    await good.recv_type("snapshot")
    await assert_refused_4401(await ws(GLOBAL))
    await good.send({"type": "ping"})
    assert (await good.recv())["type"] == "pong"


# Origin ------------------------------------------------------------------------------------


async def test_foreign_origin_is_refused_at_the_handshake_whatever_the_credentials(ws, alice):
    issued = await new_ticket(alice)
    cookie = await session_cookie(alice)
    for socket in (
        await ws(GLOBAL, alice, origin="https://evil.example"),
        await ws(GLOBAL, origin="https://evil.example", headers=[(b"cookie", cookie)]),
        await ws(f"{GLOBAL}?ticket={issued['ticket']}", origin="https://evil.example"),
        await ws(GLOBAL, alice, origin="null"),
    ):
        assert not socket.accepted
        assert socket.handshake_close_code == 4403
    # The refused handshake did not spend the ticket.
    socket = await ws(f"{GLOBAL}?ticket={issued['ticket']}")
    await socket.recv_type("snapshot")


async def test_same_host_origin_is_served(ws, alice):
    socket = await ws(GLOBAL, alice, origin="http://testserver", host="testserver")
    await socket.recv_type("snapshot")
    socket = await ws(GLOBAL, alice, origin="https://localhost:8000", host="localhost:8000")
    await socket.recv_type("snapshot")


async def test_origin_on_another_port_of_the_host_is_foreign(ws, alice):
    socket = await ws(GLOBAL, alice, origin="http://localhost:9999", host="localhost:8000")
    assert not socket.accepted


async def test_origin_matching_a_host_header_outside_allowed_hosts_is_refused(ws, alice):
    # DNS rebinding: the page's own host, but not one this site answers to.
    socket = await ws(GLOBAL, alice, origin="http://evil.example", host="evil.example")
    assert not socket.accepted
    assert socket.handshake_close_code == 4403


async def test_cors_allowed_origin_is_served(ws, alice, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://dashboard.example.org"]
    socket = await ws(GLOBAL, alice, origin="https://dashboard.example.org", host="api.internal")
    await socket.recv_type("snapshot")


async def test_no_origin_is_served_with_valid_credentials(ws, alice):
    socket = await ws(GLOBAL, alice, origin=None)
    await socket.recv_type("snapshot")


async def test_no_origin_without_credentials_is_still_4401(ws, db):
    await assert_refused_4401(await ws(GLOBAL, origin=None))


async def test_unknown_socket_path_is_refused(ws, alice):
    socket = await ws("/ws/elsewhere/", alice)
    assert not socket.accepted
