"""Deterministic workflow code only: no I/O, activities referenced by name."""

from fleetbatch.activities.types import ChunkResult
from fleetbatch.workflows.batch import BatchInput, BatchWorkflow, FileAdded, Progress
from fleetbatch.workflows.batcher import WriteBatcherWorkflow
from fleetbatch.workflows.chunk import ChunkInput, ChunkWorkflow, Response, Responses

WORKFLOWS = [BatchWorkflow, ChunkWorkflow, WriteBatcherWorkflow]

__all__ = [
    "WORKFLOWS",
    "BatchInput",
    "BatchWorkflow",
    "ChunkInput",
    "ChunkResult",
    "ChunkWorkflow",
    "FileAdded",
    "Progress",
    "Response",
    "Responses",
    "WriteBatcherWorkflow",
]
