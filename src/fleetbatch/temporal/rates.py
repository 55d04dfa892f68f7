"""Command rates, enforced by the Temporal server on each type's publish task queue.

The queue's rate limit counts activities, and each publish activity carries up
to ``publish_slice`` items, so the limit is set to rate / slice. A rate an
operator set with ``fleetbatch rate set`` is marked by its reason and survives
worker restarts; ``fleetbatch rate set TYPE default`` returns to the configured rate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import RateLimit, TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    UpdateTaskQueueConfigRequest,
)
from temporalio.client import Client

from fleetbatch.domain import CommandType
from fleetbatch.workflows.ids import publish_task_queue

log = logging.getLogger(__name__)

OPERATOR = "operator"
"""Reason prefix of a rate set at run time; start-up leaves such a rate alone."""
CONFIGURED = "configured"
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
    """Limit ``kind``'s publishes to ``per_second`` items (None lifts the limit)."""
    update = UpdateTaskQueueConfigRequest.RateLimitUpdate(reason=reason)
    if per_second is not None:
        update.rate_limit.CopyFrom(RateLimit(requests_per_second=per_second / kind.publish_slice))
    await client.workflow_service.update_task_queue_config(
        UpdateTaskQueueConfigRequest(
            namespace=client.namespace,
            identity=client.identity,
            task_queue=publish_task_queue(task_queue, kind.name),
            task_queue_type=_ACTIVITY,
            update_queue_rate_limit=update,
        )
    )


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
    per_second = (
        limit.rate_limit.requests_per_second * kind.publish_slice
        if limit.HasField("rate_limit")
        else None
    )
    return QueueRate(kind.name, queue, per_second, limit.metadata.reason)


async def apply_configured_rates(
    client: Client, task_queue: str, types: Mapping[str, CommandType]
) -> None:
    """Set each type's configured rate, except where an operator set one at run time."""
    for kind in types.values():
        now = await current_rate(client, task_queue, kind)
        if now.set_by_operator:
            log.info("keeping %s's rate set by an operator (%s)", kind.name, now.reason)
            continue
        await set_rate(client, task_queue, kind, kind.rate_per_second, CONFIGURED)
