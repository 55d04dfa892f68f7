"""Reading the write batchers from outside: their ``stats`` query, shard by shard."""

from __future__ import annotations

from temporalio.client import Client

from fleetbatch.activities.batcher_types import STATS_QUERY, BatcherStatus, batcher_workflow_id


async def batcher_statuses(client: Client, task_queue: str, shards: int) -> list[BatcherStatus]:
    """Each shard's ``stats`` (its current run: counters span every run).

    Raises:
        temporalio.service.RPCError: a shard's batcher was never started.
    """
    return [
        await client.get_workflow_handle(batcher_workflow_id(task_queue, shard)).query(
            STATS_QUERY, result_type=BatcherStatus
        )
        for shard in range(shards)
    ]
