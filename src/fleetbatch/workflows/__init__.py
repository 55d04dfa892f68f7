"""Deterministic workflow code only: no I/O, activities referenced by name.

The engine's workflows: the batch, the base of every pipeline's chunk workflow,
and the write batcher. Pipelines' chunk workflows live with their pipelines.
"""

from fleetbatch.activities.types import ChunkResult
from fleetbatch.workflows.batch import (
    ApproveWave,
    BatchInput,
    BatchWorkflow,
    FileAdded,
    Progress,
)
from fleetbatch.workflows.batcher import WriteBatcherWorkflow
from fleetbatch.workflows.chunk import ChunkInput, ChunkWorkflowBase
from fleetbatch.workflows.notify import NoticeWorkflow

WORKFLOWS = [BatchWorkflow, WriteBatcherWorkflow, NoticeWorkflow]
"""The engine's workflows; every worker also registers each pipeline's."""

__all__ = [
    "WORKFLOWS",
    "ApproveWave",
    "BatchInput",
    "BatchWorkflow",
    "ChunkInput",
    "ChunkResult",
    "ChunkWorkflowBase",
    "FileAdded",
    "NoticeWorkflow",
    "Progress",
    "WriteBatcherWorkflow",
]
