"""The event road: recorded in the change's transaction, sent only after it commits.

A rolled-back change records and sends nothing and leaves no hole in ``seq``.
"""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from experiments import lifecycle
from realtime.groups import experiment_group
from realtime.models import Event
from tests.experiments.recorded import events_of
from tests.factories import make_experiment


class Boom(Exception):
    pass


def test_a_rolled_back_change_records_nothing_and_leaves_no_hole(alice, django_capture_on_commit_callbacks):
    experiment, _ = make_experiment(alice)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(Boom), transaction.atomic():
        lifecycle.start_experiment(experiment=experiment, by=alice)
        assert len(events_of(experiment)) == 2  # recorded inside the change...
        raise Boom
    assert callbacks == []  # ...and nothing was left to publish
    experiment.refresh_from_db()
    assert experiment.status == "created"
    assert [e.seq for e in events_of(experiment)] == [1]
    lifecycle.start_experiment(experiment=experiment, by=alice)
    assert [(e.seq, e.event_type) for e in events_of(experiment)] == [
        (1, "experiment_created"),
        (2, "experiment_started"),
    ]


def test_a_committed_change_publishes_after_commit(alice, django_capture_on_commit_callbacks):
    experiment, _ = make_experiment(alice)
    with django_capture_on_commit_callbacks() as callbacks:
        lifecycle.update_experiment(experiment=experiment, by=alice, name="New")
    assert len(callbacks) == 1


async def _next_message(layer, channel: str) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout=5)


def _rolled_back_rename(experiment, by):
    with transaction.atomic():
        lifecycle.update_experiment(experiment=experiment, by=by, name="never")
        raise Boom


@pytest.mark.django_db(transaction=True)
async def test_a_rolled_back_change_sends_nothing_through_the_channel_layer(alice):
    experiment, _ = await database_sync_to_async(make_experiment)(alice)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(experiment_group(experiment.public_id), channel)

    with pytest.raises(Boom):
        await database_sync_to_async(_rolled_back_rename)(experiment, alice)
    assert await database_sync_to_async(Event.objects.count)() == 1
    await database_sync_to_async(lifecycle.update_experiment)(experiment=experiment, by=alice, name="kept")

    # The layer keeps order: the first message after the rollback is the committed change.
    message = await _next_message(layer, channel)
    assert (message["seq"], message["event_type"]) == (2, "experiment_updated")
    assert '"name":"kept"' in message["text"]
    await layer.group_discard(experiment_group(experiment.public_id), channel)
