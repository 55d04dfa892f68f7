"""Command rates, enforced by the Temporal server on each type's publish task queue.

The queue's rate limit counts activities, and each publish activity carries
one item, so the limit is the command type's rate in items per second for any
chunk size (a chunk of 1 and one of 100 publish alike). A rate an
operator set with ``fleetbatch rate set`` is marked by its reason and survives
worker restarts; ``fleetbatch rate set TYPE default`` returns to the configured rate.

A type configured without a rate (``off``) has no queue to limit: its chunks
publish in a local activity of their own, so its rate cannot be set at run time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import RateLimit, TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    UpdateTaskQueueConfigRequest,
)
from temporalio.client import Client

from fleetbatch.errors import ConfigError
from fleetbatch.pipelines.vehicle.commands import CommandType, publish_task_queue

log = logging.getLogger(__name__)

OPERATOR = "operator"
"""Reason prefix of a rate set at run time; start-up leaves such a rate alone."""
CONFIGURED = "configured"
SHOWN_WITHIN = 5.0
"""Seconds a rate change may take to show in the server's description of the queue."""
_ACTIVITY = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY


@dataclass(frozen=True)
class QueueRate:
    """A command type's rate as the server enforces it."""

    command: str
    task_queue: str
    items_per_second: float | None
    """None: no limit on the queue."""
    reason: str

    @property
    def set_by_operator(self) -> bool:
        return self.reason.startswith(OPERATOR)


async def set_rate(
    client: Client, task_queue: str, kind: CommandType, per_second: float | None, reason: str
) -> None:
    """Limit ``kind``'s publishes to ``per_second`` items (None lifts the limit), and
    wait (up to ``SHOWN_WITHIN`` seconds) until the server reports the change, so that
    a worker starting next reads it.

    Raises:
        ConfigError: ``kind`` has no configured rate, so nothing publishes on its queue.
    """
    if kind.publishes_in_chunk:
        raise ConfigError(
            f"{kind.name} is configured without a rate, so its chunks publish directly, "
            f"not through a rate-limited queue; give it a rate in FLEETBATCH_COMMANDS "
            f"(and restart the workers) to limit it"
        )
    update = UpdateTaskQueueConfigRequest.RateLimitUpdate(reason=reason)
    if per_second is not None:
        update.rate_limit.CopyFrom(RateLimit(requests_per_second=per_second))
    await client.workflow_service.update_task_queue_config(
        UpdateTaskQueueConfigRequest(
            namespace=client.namespace,
            identity=client.identity,
            task_queue=publish_task_queue(task_queue, kind.name),
            task_queue_type=_ACTIVITY,
            update_queue_rate_limit=update,
        )
    )
    deadline = time.monotonic() + SHOWN_WITHIN
    while (await current_rate(client, task_queue, kind)).reason != reason:
        if time.monotonic() > deadline:
            log.warning("the server does not show %s's new rate yet", kind.name)
            return
        await asyncio.sleep(0.05)


async def current_rate(client: Client, task_queue: str, kind: CommandType) -> QueueRate:
    """The rate the server enforces now for ``kind``."""
    queue = publish_task_queue(task_queue, kind.name)
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=_ACTIVITY,
            report_config=True,
        )
    )
    limit = described.config.queue_rate_limit
    per_second = limit.rate_limit.requests_per_second if limit.HasField("rate_limit") else None
    return QueueRate(kind.name, queue, per_second, limit.metadata.reason)


async def apply_configured_rates(
    client: Client, task_queue: str, types: Mapping[str, CommandType]
) -> None:
    """Set each type's configured rate, except where an operator set one at run time."""
    for kind in types.values():
        if kind.publishes_in_chunk:
            continue  # publishes in its chunks: no queue to limit
        now = await current_rate(client, task_queue, kind)
        if now.set_by_operator:
            log.info("keeping %s's rate set by an operator (%s)", kind.name, now.reason)
            continue
        await set_rate(client, task_queue, kind, kind.rate_per_second, CONFIGURED)
