"""``manage.py prune_events``: old events go, and a replay from before the cut is answered
``recovered: false`` with a fresh snapshot, never a partial history."""

import asyncio
import contextlib
import io
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command
from django.utils import timezone

from agents import reporting
from realtime.models import Event
from research_site.asgi import application
from tests.factories import api_client, started_experiment, token_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def history(alice):
    """An experiment with ten events; the first six are 40 days old."""
    experiment, issued = started_experiment(alice, agents=1)
    run = issued[0].run
    for percent in range(10, 80, 10):
        run = reporting.record_progress(run=run, progress_percent=percent)
    events = list(Event.objects.filter(experiment_id=experiment.public_id).order_by("seq"))
    assert len(events) == 10
    old = timezone.now() - timedelta(days=40)
    Event.objects.filter(pk__in=[e.pk for e in events[:6]]).update(timestamp=old)
    return experiment


def prune(*args) -> str:
    out = io.StringIO()
    call_command("prune_events", *args, stdout=out)
    return out.getvalue()


def test_prune_events_deletes_events_older_than_the_retention(history, alice):
    output = prune()

    assert "Deleted 6 event(s) older than 30 day(s)" in output
    seqs = list(Event.objects.filter(experiment_id=history.public_id).order_by("seq").values_list("seq", flat=True))
    assert seqs == [7, 8, 9, 10]
    assert prune().startswith("Deleted 0")


def test_prune_events_follows_the_runtime_config(history, staff):
    api_client(staff).post("/api/research/config", {"event_retention_days": 60}, format="json")

    assert prune().startswith("Deleted 0 event(s) older than 60 day(s)")
    assert prune("--days", "10").startswith("Deleted 6")


def test_prune_events_refuses_negative_days(history):
    with pytest.raises(CommandError):
        prune("--days", "-1")


async def _subscribe(experiment_id: str, since: int, user) -> list[dict]:
    key = await database_sync_to_async(token_for)(user)
    socket = WebsocketCommunicator(
        application, "/ws/research/", headers=[(b"host", b"testserver"), (b"authorization", f"Token {key}".encode())]
    )
    try:
        connected, _ = await socket.connect(timeout=5)
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "snapshot"
        await socket.send_json_to({"type": "subscribe", "experiment_id": experiment_id, "since": since})
        messages = [await socket.receive_json_from(timeout=5)]
        while not await socket.receive_nothing(timeout=0.3):
            message = await socket.receive_json_from(timeout=5)
            if message["type"] != "heartbeat":
                messages.append(message)
        return messages
    finally:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await socket.disconnect(timeout=2)
        from realtime.hub import _hubs

        hub = _hubs.pop(asyncio.get_running_loop(), None)
        if hub is not None:
            await hub.stop()


async def test_a_replay_from_before_the_cut_is_not_recovered(history, alice):
    await database_sync_to_async(prune)()

    before = await _subscribe(history.public_id, 2, alice)
    after = await _subscribe(history.public_id, 6, alice)

    reply = before[0]
    assert reply["type"] == "subscribed"
    assert reply["recovered"] is False
    assert reply["snapshot"]["experiment"]["id"] == history.public_id
    assert reply["seq"] == 10
    assert [m for m in before[1:] if m["type"] == "event"] == []
    assert after[0]["recovered"] is True
    assert [m["seq"] for m in after[1:] if m["type"] == "event"] == [7, 8, 9, 10]
