"""The enrichment pipeline's chunk workflow: the engine's chunk around one
heartbeating activity that enriches, records and writes out the chunk's users."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from fleetbatch.activities.types import ChunkResult
    from fleetbatch.domain import ItemRef
    from fleetbatch.pipelines.enrich.types import (
        PROCESS_CHUNK,
        WORKFLOW_NAME,
        EnrichStep,
        ProcessChunkInput,
        ProcessChunkResult,
    )
    from fleetbatch.workflows.chunk import ChunkInput, ChunkWorkflowBase
    from fleetbatch.workflows.options import RETRY


@workflow.defn(name=WORKFLOW_NAME)
class EnrichChunkWorkflow(ChunkWorkflowBase):
    @workflow.run
    async def run(self, params: ChunkInput) -> ChunkResult:
        return await self.run_chunk(params)

    async def process(self, params: ChunkInput, items: list[ItemRef]) -> None:
        step = EnrichStep(**params.step)
        done: ProcessChunkResult = await workflow.execute_activity(
            PROCESS_CHUNK,
            ProcessChunkInput(
                params.batch_id,
                workflow.info().workflow_id,
                params.chunk.first_id,
                params.chunk.last_id,
                [i.id for i in items],
                step.format,
            ),
            result_type=ProcessChunkResult,
            # A worker that dies mid-chunk is noticed within the heartbeat timeout; the
            # retry resumes from the last heartbeat's index (see the activity).
            heartbeat_timeout=timedelta(seconds=step.heartbeat_timeout_seconds),
            start_to_close_timeout=timedelta(seconds=step.start_to_close_seconds),
            retry_policy=RETRY,
        )
        self.recorded(done.counts)
