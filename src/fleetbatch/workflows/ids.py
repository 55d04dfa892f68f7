"""Workflow ids: readable, stable, and unique per batch."""

from fleetbatch.domain import ChunkSpec


def batch_workflow_id(batch_id: str) -> str:
    """The batch workflow's id."""
    return f"fleetbatch-batch-{batch_id}"


def chunk_workflow_id(batch_id: str, chunk: ChunkSpec) -> str:
    """A chunk's id; in per-VIN mode it names the VIN, as the original design did."""
    if chunk.vin is not None:
        return f"fleetbatch-{batch_id}-vin-{chunk.vin}"
    return f"fleetbatch-{batch_id}-chunk-{chunk.first_id}-{chunk.last_id}"


def publish_task_queue(task_queue: str, command: str) -> str:
    """The activity task queue a command type's publishes run on; its rate limit is
    the command type's rate."""
    return f"{task_queue}-publish-{command}"
