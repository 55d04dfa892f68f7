"""BENCHMARK SKELETON — not product code: it lives in ``fleetbatch_bench``, outside the
``fleetbatch`` package, and only ``fleetbatch bench`` runs it.

The orchestration skeleton of DESIGN.md: the engine's chunk shape with none of
fleetbatch's own work, so ``fleetbatch bench`` can show what the engine alone
allows on the machine at hand. A parent keeps ``max_in_flight`` chunk child
workflows running (started with ABANDON, reporting by signal); each chunk
runs one local activity that begins it (and "publishes": the responses are
signalled back at once), waits for the grouped response signal under a
timer, then records in a second local activity, which signals the parent —
the same workflow tasks, local activities, timers and signals per chunk as
``ChunkWorkflowBase`` runs for the vehicle pipeline's ``VehicleChunkWorkflow``
on a command type with no rate limit (``vehicle.start_round``: begin, consent,
publish; then ``items.record_outcomes``, which reports the chunk to its batch).
The activities do no I/O: no store, no bus, no simulators, no consent service.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.workflow import ParentClosePolicy

_TIMEOUT = timedelta(seconds=30)
_RESPONSES_SIGNAL = "responses"
_DONE_SIGNAL = "chunk_done"


@dataclass(frozen=True)
class SkeletonInput:
    items: int
    chunk_size: int
    max_in_flight: int
    max_history_events: int = 5_000
    next_first: int = 0
    """Carried over continue-as-new, with the counts below."""
    done: int = 0
    running: int = 0


@dataclass(frozen=True)
class SkeletonChunk:
    parent_id: str
    first: int
    size: int


@dataclass
class Columns:
    """A chunk's items column by column, as the engine's chunks carry them
    (``ItemColumns``: ids, keys, effect ids)."""

    ids: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    effect_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Answers:
    """The domain's grouped answers, as the vehicle chunk's ``Responses`` signal."""

    command_ids: list[str]
    ok: list[bool]


@dataclass(frozen=True)
class RecordArgs:
    parent_id: str
    ids: list[int]
    statuses: list[str]


class SkeletonActivities:
    """Activities that return at once; start and record signal through ``client``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._signals: set[asyncio.Task[None]] = set()

    @activity.defn(name="bench.skeleton.start")
    async def start(self, chunk: SkeletonChunk) -> Columns:
        """The chunk's items; the domain answers every command at once, in one signal."""
        ids = list(range(chunk.first, chunk.first + chunk.size))
        items = Columns(ids, [f"SKEL{i:013d}" for i in ids], [f"cmd-{i}" for i in ids])
        answers = Answers(items.effect_ids, [True] * len(ids))
        handle = self._client.get_workflow_handle(_chunk_id(chunk))
        task = asyncio.create_task(handle.signal(_RESPONSES_SIGNAL, answers))
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)
        return items

    @activity.defn(name="bench.skeleton.record")
    async def record(self, args: RecordArgs) -> None:
        await self._client.get_workflow_handle(args.parent_id).signal(_DONE_SIGNAL, len(args.ids))


def _chunk_id(chunk: SkeletonChunk) -> str:
    return f"{chunk.parent_id}-chunk-{chunk.first}"


async def _local(activity_name: str, arg: object, result_type: type | None = None) -> object:
    return await workflow.execute_local_activity(
        activity_name, arg, result_type=result_type, start_to_close_timeout=_TIMEOUT
    )


@workflow.defn(name="BenchSkeletonChunk")
class SkeletonChunkWorkflow:
    def __init__(self) -> None:
        self._answers: Answers | None = None

    @workflow.signal(name=_RESPONSES_SIGNAL)
    def responses(self, answers: Answers) -> None:
        self._answers = answers

    @workflow.run
    async def run(self, chunk: SkeletonChunk) -> int:
        items = await _local("bench.skeleton.start", chunk, Columns)
        assert isinstance(items, Columns)
        await workflow.wait_condition(lambda: self._answers is not None, timeout=_TIMEOUT)
        assert self._answers is not None
        statuses = ["succeeded" if ok else "failed" for ok in self._answers.ok]
        await _local("bench.skeleton.record", RecordArgs(chunk.parent_id, items.ids, statuses))
        return len(items.ids)


@workflow.defn(name="BenchSkeletonBatch")
class SkeletonBatchWorkflow:
    """A sliding window of chunk workflows over ``items``; returns the items done."""

    @workflow.init
    def __init__(self, params: SkeletonInput) -> None:
        # From the input, so the signals of a continued run count on.
        self._done, self._running = params.done, params.running

    @workflow.signal(name=_DONE_SIGNAL)
    def chunk_done(self, items: int) -> None:
        self._done += items
        self._running -= 1

    @workflow.run
    async def run(self, params: SkeletonInput) -> int:
        parent_id = workflow.info().workflow_id
        first = params.next_first
        while first < params.items:
            await workflow.wait_condition(lambda: self._running < params.max_in_flight)
            if workflow.info().get_current_history_length() >= params.max_history_events:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    replace(params, next_first=first, done=self._done, running=self._running)
                )
            # As fleetbatch's batch fills its window: every free slot at once.
            starts = []
            while first < params.items and self._running < params.max_in_flight:
                chunk = SkeletonChunk(
                    parent_id, first, min(params.chunk_size, params.items - first)
                )
                starts.append(self._start(chunk))
                self._running += 1
                first += chunk.size
            await asyncio.gather(*starts)
        await workflow.wait_condition(lambda: self._done >= params.items)
        return self._done

    @staticmethod
    async def _start(chunk: SkeletonChunk) -> None:
        await workflow.start_child_workflow(
            SkeletonChunkWorkflow.run,
            chunk,
            id=_chunk_id(chunk),
            parent_close_policy=ParentClosePolicy.ABANDON,
        )


def skeleton_worker(
    client: Client, task_queue: str, *, max_concurrent_activities: int = 200
) -> Worker:
    """A worker for the skeleton, set up as fleetbatch's own (no workflow sandbox)."""
    activities = SkeletonActivities(client)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[SkeletonBatchWorkflow, SkeletonChunkWorkflow],
        activities=[activities.start, activities.record],
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
