"""Membership changes and deletions reach open sockets at once, without a reconnect."""

import pytest

from experiments import lifecycle, membership
from tests.realtime.conftest import experiment_for, produce, report_progress

pytestmark = pytest.mark.django_db(transaction=True)

GLOBAL = "/ws/research/"


def experiment_path(experiment) -> str:
    return f"/ws/research/experiments/{experiment.public_id}/"


async def global_stream(ws, user):
    socket = await ws(GLOBAL, user)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": None})
    await socket.recv_type("subscribed")
    return socket


async def test_removed_member_is_told_and_closed_4403_on_the_experiment_path(ws, alice, bob):
    experiment, runs = await experiment_for(alice, started=True, members={bob: "viewer"})
    socket = await ws(experiment_path(experiment), bob)
    await socket.recv_type("snapshot")
    owner = await ws(experiment_path(experiment), alice)
    await owner.recv_type("snapshot")
    await produce(membership.remove_member, experiment=experiment, username="bob", by=alice)
    messages, code = await socket.messages_until_close()
    assert code == 4403
    assert [m["type"] for m in messages] == ["error"]
    assert messages[0]["code"] == "forbidden"
    assert messages[0]["experiment_id"] == experiment.public_id
    # The owner's socket is untouched.
    await report_progress(runs[0], 10.0)
    assert len(await owner.events(2)) == 2


async def test_removed_member_loses_a_multiplexed_subscription_but_keeps_the_socket(ws, alice, bob):
    experiment, runs = await experiment_for(alice, started=True, members={bob: "viewer"})
    other, other_runs = await experiment_for(bob, started=True)
    socket = await ws(GLOBAL, bob)
    await socket.recv_type("snapshot")
    for experiment_id in (experiment.public_id, other.public_id):
        await socket.send({"type": "subscribe", "experiment_id": experiment_id})
        await socket.recv_type("subscribed")
    await produce(membership.remove_member, experiment=experiment, username="bob", by=alice)
    error = await socket.recv_type("error")
    assert error["code"] == "forbidden"
    assert error["experiment_id"] == experiment.public_id
    await report_progress(runs[0], 10.0)
    await report_progress(other_runs[0], 10.0)
    events = await socket.events(2)
    assert {e["experiment_id"] for e in events} == {other.public_id}
    assert await socket.silent()


async def test_a_role_change_keeps_the_socket(ws, alice, bob):
    experiment, runs = await experiment_for(alice, started=True, members={bob: "viewer"})
    socket = await ws(experiment_path(experiment), bob)
    await socket.recv_type("snapshot")
    await produce(membership.set_member, experiment=experiment, username="bob", role="operator", by=alice)
    await report_progress(runs[0], 10.0)
    assert len(await socket.events(2)) == 2


async def test_deleted_experiment_sends_experiment_deleted_then_closes_4404(ws, alice, bob):
    experiment, _ = await experiment_for(alice, members={bob: "viewer"})
    sockets = [await ws(experiment_path(experiment), user) for user in (alice, bob)]
    for socket in sockets:
        await socket.recv_type("snapshot")
    await produce(lifecycle.delete_experiment, experiment=experiment, by=alice)
    for socket in sockets:
        messages, code = await socket.messages_until_close()
        assert code == 4404
        assert [m["type"] for m in messages] == ["event", "error"]
        deleted = messages[0]
        assert deleted["event_type"] == "experiment_deleted"
        assert deleted["seq"] == 2
        assert deleted["data"]["id"] == experiment.public_id
        assert deleted["data"]["by"] == "alice"
        assert messages[1]["code"] == "not_found"


async def test_members_on_the_global_stream_hear_of_a_deletion(ws, alice, bob, charlie):
    experiment, _ = await experiment_for(alice, members={bob: "viewer"})
    member = await global_stream(ws, bob)
    outsider = await global_stream(ws, charlie)
    await produce(lifecycle.delete_experiment, experiment=experiment, by=alice)
    (deleted,) = await member.events(1)
    assert deleted["event_type"] == "experiment_deleted"
    assert deleted["experiment_id"] == experiment.public_id
    assert await outsider.silent()


async def test_a_new_member_starts_receiving_on_the_global_stream(ws, alice, bob):
    experiment, runs = await experiment_for(alice, started=True)
    socket = await global_stream(ws, bob)
    await report_progress(runs[0], 10.0)
    assert await socket.silent(0.3)
    await produce(membership.set_member, experiment=experiment, username="bob", role="viewer", by=alice)
    await report_progress(runs[0], 20.0)
    (event,) = await socket.events(1)
    assert event["experiment_id"] == experiment.public_id
    assert event["data"]["progress_percent"] == 20.0
    assert await socket.silent()


async def test_a_new_member_may_subscribe_without_reconnecting(ws, alice, bob):
    experiment, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, bob)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": experiment.public_id})
    assert (await socket.recv_type("error"))["code"] == "forbidden"
    await produce(membership.set_member, experiment=experiment, username="bob", role="viewer", by=alice)
    await socket.send({"type": "subscribe", "experiment_id": experiment.public_id})
    await socket.recv_type("subscribed")
    await report_progress(runs[0], 20.0)
    assert len(await socket.events(2)) == 2


async def test_a_removed_member_stops_receiving_on_the_global_stream(ws, alice, bob):
    experiment, runs = await experiment_for(alice, started=True, members={bob: "viewer"})
    socket = await global_stream(ws, bob)
    await report_progress(runs[0], 10.0)
    assert len(await socket.events(2)) == 2
    await produce(membership.remove_member, experiment=experiment, username="bob", by=alice)
    await report_progress(runs[0], 20.0)
    assert await socket.silent(0.3)


async def test_a_member_removed_and_added_again_sees_nothing_from_the_time_between(ws, alice, bob):
    experiment, runs = await experiment_for(alice, started=True, members={bob: "viewer"})
    socket = await global_stream(ws, bob)
    await report_progress(runs[0], 10.0)
    assert len(await socket.events(2)) == 2
    await produce(membership.remove_member, experiment=experiment, username="bob", by=alice)
    await report_progress(runs[0], 20.0)
    await report_progress(runs[0], 30.0)
    await produce(membership.set_member, experiment=experiment, username="bob", role="viewer", by=alice)
    await report_progress(runs[0], 40.0)
    (event,) = await socket.events(1)
    assert event["data"]["progress_percent"] == 40.0
    assert await socket.silent()
