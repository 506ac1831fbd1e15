"""Sending through the channel layer from synchronous code (after commit).

Publishing is best effort by design: the event is already stored, and every socket
repairs what the layer lost from the event store (``realtime/hub.py``). A layer that is
down (Redis restarting) must therefore never fail the request that made the change.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from realtime.groups import (
    ACCESS_MESSAGE,
    CONTROL_MESSAGE,
    EVENT_MESSAGE,
    GLOBAL_GROUP,
    SYSTEM_GROUP,
    experiment_group,
    run_group,
)

logger = logging.getLogger(__name__)


async def _group_send_all(layer, groups: list[str], message: dict) -> None:
    for group in groups:
        await layer.group_send(group, message)


def send_to_groups(groups: list[str], message: dict) -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(_group_send_all)(layer, groups, message)
        return True
    except Exception as exc:  # the layer is down: stored events are repaired later
        logger.warning("channel layer send to %s failed: %r", groups, exc)
        return False


def publish_event(
    *,
    experiment_id: str | None,
    seq: int | None,
    event_id: int,
    run_id: str | None,
    event_type: str,
    text: str,
    audience: list[int] | None = None,
) -> None:
    message = {
        "type": EVENT_MESSAGE,
        "experiment_id": experiment_id,
        "seq": seq,
        "id": event_id,
        "run_id": run_id,
        "event_type": event_type,
        "text": text,
    }
    if audience is not None:
        message["audience"] = audience
    if experiment_id is None:
        send_to_groups([SYSTEM_GROUP], message)
    else:
        send_to_groups([experiment_group(experiment_id), GLOBAL_GROUP], message)


def publish_access_change(*, experiment_id: str, user_id: int | None) -> None:
    """Tell every process that who may see ``experiment_id`` changed (user None: everyone)."""
    message = {"type": ACCESS_MESSAGE, "experiment_id": experiment_id, "user_id": user_id}
    send_to_groups([experiment_group(experiment_id), GLOBAL_GROUP], message)


def publish_control(*, run_id: str, control: dict, round_key: str | None = None) -> None:
    """Push a control message (``{"type": "control", "action": …}``) to the run's agent.

    ``round_key`` names the plan round a decision belongs to, so an agent socket never
    hears of one decision twice (once live, once from the hub's repair sweep).
    """
    message = {"type": CONTROL_MESSAGE, "run_id": run_id, "control": control, "round": round_key}
    send_to_groups([run_group(run_id)], message)
