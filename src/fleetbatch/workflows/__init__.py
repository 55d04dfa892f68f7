"""Deterministic workflow code only: no I/O, activities referenced by name."""

from fleetbatch.workflows.batch import BatchInput, BatchWorkflow, FileAdded, Progress
from fleetbatch.workflows.chunk import ChunkInput, ChunkResult, ChunkWorkflow, Response, Responses

WORKFLOWS = [BatchWorkflow, ChunkWorkflow]

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
]
