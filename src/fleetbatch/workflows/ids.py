"""Workflow ids: readable, stable, and unique per batch. They name item ids, never
item keys (a key may be personal data; ids are the store's)."""

from fleetbatch.domain import ChunkSpec


def batch_workflow_id(batch_id: str) -> str:
    """The batch workflow's id."""
    return f"fleetbatch-batch-{batch_id}"


def chunk_workflow_id(batch_id: str, chunk: ChunkSpec) -> str:
    """A chunk's id; a chunk of one item is named by that item's id."""
    if chunk.size == 1 and chunk.first_id == chunk.last_id:
        return f"fleetbatch-{batch_id}-item-{chunk.first_id}"
    return f"fleetbatch-{batch_id}-chunk-{chunk.first_id}-{chunk.last_id}"
