"""Fire-and-forget tasks that are not garbage-collected mid-flight.

asyncio holds only weak references to running tasks; a task nobody references can
vanish before it finishes. ``spawn`` keeps one until the task is done and logs a failure.
"""

import asyncio
import logging

logger = logging.getLogger(__name__)

_running: set[asyncio.Task] = set()


def _done(task: asyncio.Task) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=task.exception())


def spawn(coroutine, *, loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Task:
    task = (loop or asyncio.get_running_loop()).create_task(coroutine)
    _running.add(task)
    task.add_done_callback(_done)
    return task
