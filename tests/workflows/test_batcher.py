"""The write batcher on the time-skipping server: flushes, dedup, retries, acks,
continue-as-new. Its writes go to a real SQLite store; callers are small
collector workflows (or none: a caller id nobody runs is a gone caller)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from fleetbatch.activities.batcher import BatcherActivities
from fleetbatch.activities.batcher_types import (
    FLUSH_WRITES,
    WRITE_ACKED_SIGNAL,
    BatcherConfig,
    BatcherStatus,
    FlushWritesInput,
    SubmitWriteInput,
    WriteAck,
    WriteRequest,
    batcher_workflow_id,
)
from fleetbatch.activities.types import RecordOutcomesInput
from fleetbatch.config import Settings
from fleetbatch.domain import ChunkSpec
from fleetbatch.intake import Accepted
from fleetbatch.services.batchers import batcher_statuses
from fleetbatch.store import NewBatch, Store
from fleetbatch.workflows import BatchInput, WriteBatcherWorkflow
from fleetbatch_bench.measure import OutcomeWriteCounter, counting_outcome_writes
from support import harness, vins

MINUTE = 60.0
HOUR = 3600.0


@workflow.defn(sandboxed=False)
class AckCollector:
    """A caller: waits for ``n`` acknowledgements and returns them in arrival order."""

    def __init__(self) -> None:
        self._acks: list[WriteAck] = []

    @workflow.signal(name=WRITE_ACKED_SIGNAL)
    def acked(self, ack: WriteAck) -> None:
        self._acks.append(ack)

    @workflow.run
    async def run(self, n: int) -> list[WriteAck]:
        await workflow.wait_condition(lambda: len(self._acks) >= n)
        return self._acks


class FlakyFlush:
    """Fails the first ``failures`` flushes as a database outage would, then writes."""

    def __init__(self, real: BatcherActivities, failures: int) -> None:
        self._real = real
        self.failures = failures
        self.calls = 0

    @activity.defn(name=FLUSH_WRITES)
    async def flush(self, params: FlushWritesInput) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("database unavailable")
        return await self._real.flush(params)


@dataclass
class Rig:
    client: Client
    store: Store
    activities: BatcherActivities
    task_queue: str
    item_ids: list[int]
    batch_id: str
    writes: OutcomeWriteCounter
    """Outcome-writing statements on the store (what the batcher saves)."""

    async def stats(self) -> BatcherStatus:
        [status] = await batcher_statuses(self.client, self.task_queue, 1)
        return status

    async def send(self, request_id: str, caller: str, item: int) -> None:
        """A request that records ``item`` succeeded, through shard 0 of 1."""
        write = RecordOutcomesInput([item], ["succeeded"], [1], [None])
        await self.activities.submit(
            SubmitWriteInput(WriteRequest(request_id, caller, write), "key", 1)
        )

    async def collector(self, n: int) -> WorkflowHandle[Any, list[WriteAck]]:
        return await self.client.start_workflow(
            AckCollector.run, n, id=f"caller-{uuid.uuid4()}", task_queue=self.task_queue
        )

    async def statuses(self) -> list[str]:
        rows = [r async for r in self.store.items.stream(self.batch_id)]
        return [r["status"] for r in rows if r["id"] in self.item_ids]

    async def until(self, check: Callable[[BatcherStatus], bool]) -> BatcherStatus:
        """Query the batcher (in real time) until ``check`` holds; return that status."""
        async with asyncio.timeout(60):
            while True:
                with contextlib.suppress(RPCError):  # not started yet
                    if check(status := await self.stats()):
                        return status
                await asyncio.sleep(0.05)

    async def until_written(self, n: int) -> BatcherStatus:
        return await self.until(lambda s: s.stats.written >= n)


@contextlib.asynccontextmanager
async def rig(
    env: WorkflowEnvironment, tmp_path: Path, items: int, flaky_failures: int = 0, **config: Any
) -> AsyncIterator[Rig]:
    store = await Store.open(f"sqlite:///{tmp_path / 'batcher.db'}")
    batch_id = f"b-{uuid.uuid4().hex[:8]}"
    await store.uploads.store(
        batch_id,
        NewBatch("vehicle", "lock_doors", {"command": "lock_doors"}, chunk_size=1, max_in_flight=1),
        "vins.csv",
        [Accepted(line, vin) for line, vin in enumerate(vins(items), start=2)],
    )
    ids = [row["id"] async for row in store.items.stream(batch_id)]
    for item in ids:  # in flight, as their one-item chunks leave them
        await store.items.begin_chunk(batch_id, ChunkSpec(item, item, 1), f"chunk-{item}")
    task_queue = f"tq-{uuid.uuid4()}"
    real = BatcherActivities(store, env.client, task_queue, BatcherConfig(**config))
    flush = FlakyFlush(real, flaky_failures).flush if flaky_failures else real.flush
    worker = Worker(
        env.client,
        task_queue=task_queue,
        workflows=[WriteBatcherWorkflow, AckCollector],
        activities=[real.submit, flush, real.ack],
    )
    try:
        async with worker:
            try:
                with counting_outcome_writes(store) as writes:
                    yield Rig(env.client, store, real, task_queue, ids, batch_id, writes)
            finally:
                await stop_batchers(env.client, task_queue, 1)
    finally:
        await store.close()


async def stop_batchers(client: Client, task_queue: str, shards: int) -> None:
    """Terminate the test's batchers while their worker runs: a batcher task left
    without a worker would stop the session's time-skipping server from skipping."""
    for shard in range(shards):
        with contextlib.suppress(RPCError):  # never started, or already closed
            await client.get_workflow_handle(batcher_workflow_id(task_queue, shard)).terminate()


def acked_ids(acks: Sequence[WriteAck]) -> list[str]:
    assert all(a.error is None for a in acks), acks
    return [a.request_id for a in acks]


async def test_flushes_when_max_batch_requests_wait(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with rig(time_skipping_env, tmp_path, 5, max_batch=5, max_wait_seconds=HOUR) as r:
        caller = await r.collector(5)
        for n, item in enumerate(r.item_ids):
            await r.send(f"req-{n}", caller.id, item)
        acks = await caller.result()
        stats = await r.stats()
        assert await r.statuses() == ["succeeded"] * 5
    assert sorted(acked_ids(acks)) == [f"req-{n}" for n in range(5)]
    assert (stats.stats.flushes, stats.stats.flushed_by_size, stats.stats.written) == (1, 1, 5)
    assert stats.stats.last_flush_latency_seconds < MINUTE  # not the hour's timer
    assert r.writes.statements == 1


async def test_flushes_when_the_oldest_waited_max_wait(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with rig(time_skipping_env, tmp_path, 3, max_batch=100, max_wait_seconds=20) as r:
        caller = await r.collector(3)
        for n, item in enumerate(r.item_ids):
            await r.send(f"req-{n}", caller.id, item)
        acks = await caller.result()  # the server skips time to the flush
        stats = await r.stats()
        assert await r.statuses() == ["succeeded"] * 3
    assert len(acked_ids(acks)) == 3
    assert (stats.stats.flushes, stats.stats.flushed_by_time, stats.stats.written) == (1, 1, 3)
    assert 20 <= stats.stats.last_flush_latency_seconds < MINUTE
    assert (stats.pending, stats.dedup_window_size) == (0, 3)


async def test_duplicate_requests_are_dropped_and_written_once(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with rig(time_skipping_env, tmp_path, 3, max_batch=3, max_wait_seconds=HOUR) as r:
        a, b, c = r.item_ids
        caller = await r.collector(4)
        await r.send("req-a", caller.id, a)
        await r.send("req-a", caller.id, a)  # pending: dropped
        await r.send("req-b", caller.id, b)
        await r.send("req-c", caller.id, c)  # third distinct request: size flush
        await r.until_written(3)
        await r.send("req-a", caller.id, a)  # written lately: dropped, acknowledged again
        acks = await caller.result()
        stats = await r.stats()
    assert sorted(acked_ids(acks)) == ["req-a", "req-a", "req-b", "req-c"]
    assert (stats.stats.received, stats.stats.duplicates_dropped) == (5, 2)
    assert (stats.stats.flushes, stats.stats.written) == (1, 3)
    assert r.writes.statements == 1


async def test_failed_flush_is_retried_without_losing_requests(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with rig(
        time_skipping_env, tmp_path, 4, flaky_failures=2, max_batch=4, max_wait_seconds=HOUR
    ) as r:
        caller = await r.collector(4)
        for n, item in enumerate(r.item_ids):
            await r.send(f"req-{n}", caller.id, item)
        acks = await caller.result()
        stats = await r.stats()
        assert await r.statuses() == ["succeeded"] * 4
    assert sorted(acked_ids(acks)) == [f"req-{n}" for n in range(4)]
    assert (stats.stats.flushes, stats.stats.written, stats.stats.failed) == (1, 4, 0)
    assert r.writes.statements == 1  # the two failed attempts wrote nothing


async def test_a_gone_caller_does_not_block_the_others(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with rig(time_skipping_env, tmp_path, 4, max_batch=4, max_wait_seconds=HOUR) as r:
        finished = await r.collector(0)
        await finished.result()
        first, second = await r.collector(1), await r.collector(1)
        await r.send("req-never", "caller-that-never-ran", r.item_ids[0])
        await r.send("req-finished", finished.id, r.item_ids[1])
        await r.send("req-first", first.id, r.item_ids[2])
        await r.send("req-second", second.id, r.item_ids[3])
        assert acked_ids(await first.result()) == ["req-first"]
        assert acked_ids(await second.result()) == ["req-second"]
        await r.until(lambda s: s.acks_in_flight == 0)
        assert await r.statuses() == ["succeeded"] * 4


@pytest.mark.slow
async def test_a_burst_across_continue_as_new_loses_nothing(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    total = 300
    async with rig(
        time_skipping_env,
        tmp_path,
        total,
        max_batch=25,
        max_wait_seconds=0.5,
        max_requests_per_run=40,
    ) as r:
        with time_skipping_env.auto_time_skipping_disabled():
            # Waves of 50 concurrent signals, each more than a run takes: every wave
            # makes a run hand over, and the next wave lands while it does.
            for start in range(0, total, 50):
                await asyncio.gather(
                    *(
                        r.send(f"req-{n}", f"gone-{n}", r.item_ids[n])
                        for n in range(start, start + 50)
                    )
                )
                await r.until(lambda s, sent=start + 50: s.stats.received >= sent)  # type: ignore[misc]
            stats = await r.until_written(total)
        assert await r.statuses() == ["succeeded"] * total
    assert stats.stats.received == total
    assert stats.stats.duplicates_dropped == 0
    assert stats.stats.written == total
    assert stats.stats.continued_as_new >= 3
    assert stats.dedup_window_size == total  # carried across every hand-over


async def test_per_vin_chunks_record_through_sharded_batchers(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    batch = vins(12)
    async with harness(
        time_skipping_env.client,
        tmp_path,
        chunk_size=1,
        write_shards=2,
        write_max_wait_seconds=0.3,
    ) as h:
        with (
            counting_outcome_writes(h.store) as writes,
            time_skipping_env.auto_time_skipping_disabled(),
        ):
            upload = await h.submit(batch)
            counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        shards = await batcher_statuses(h.client, h.settings.temporal_task_queue, 2)
        await stop_batchers(h.client, h.settings.temporal_task_queue, 2)
    assert counts["succeeded"] == 12
    assert {row["status"] for row in items.values()} == {"succeeded"}
    assert sum(s.stats.written for s in shards) == 12
    assert all(s.stats.written > 0 for s in shards)  # both shards took VINs
    assert writes.statements == sum(s.stats.flushes for s in shards) < 12


async def test_a_write_without_acknowledgement_fails_its_item(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    batch = vins(2)
    # The batcher would flush only after a day: the callers' wait (1 s in real time
    # here; 2 minutes by default) runs out first.
    async with harness(
        time_skipping_env.client,
        tmp_path,
        chunk_size=1,
        write_shards=1,
        write_max_wait_seconds=86400,
        write_ack_timeout_seconds=1,
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(batch)
            counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        [status] = await batcher_statuses(h.client, h.settings.temporal_task_queue, 1)
        await stop_batchers(h.client, h.settings.temporal_task_queue, 1)
    assert counts["failed"] == 2
    assert {row["status"] for row in items.values()} == {"failed"}
    assert {row["error"] for row in items.values()} == {
        f"no acknowledgement from write batcher {h.settings.temporal_task_queue}-batcher-0 "
        "within 1s"
    }
    assert (status.pending, status.stats.written) == (2, 0)


def test_callers_wait_two_minutes_for_an_acknowledgement_by_default() -> None:
    assert Settings().write_ack_timeout_seconds == 120
    assert BatchInput("b", "lock_doors", "doors", 1, 1, 30, 3).write_ack_timeout_seconds == 120


async def test_bad_outcomes_fail_at_the_caller_and_never_reach_a_batcher(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with rig(time_skipping_env, tmp_path, 1) as r:
        bad = RecordOutcomesInput(r.item_ids, ["in_flight"], [1], [None])
        with pytest.raises(ApplicationError) as failure:
            await r.activities.submit(SubmitWriteInput(WriteRequest("req", "c", bad), "k", 1))
        with pytest.raises(RPCError):
            await r.stats()  # no batcher was started
    assert failure.value.type == "InvalidInput"
    assert failure.value.non_retryable
    assert failure.value.message == f"outcome for item {r.item_ids[0]} is not terminal: in_flight"


async def test_a_batcher_says_in_the_web_ui_what_it_is(dev_client: Client, tmp_path: Path) -> None:
    """Idle between flushes by design: its summary, details and memo say so (on the dev
    server, which keeps a start's user metadata), and the memo stays with the runs that
    continue it as new."""
    env = WorkflowEnvironment.from_client(dev_client)
    async with rig(env, tmp_path, 3, max_wait_seconds=0.1, max_requests_per_run=2) as r:
        handle = dev_client.get_workflow_handle(batcher_workflow_id(r.task_queue, 0))
        await r.send("req-0", "gone-0", r.item_ids[0])
        first = await handle.describe()
        await r.send("req-1", "gone-1", r.item_ids[1])
        await r.until(lambda s: s.stats.continued_as_new >= 1)
        await r.send("req-2", "gone-2", r.item_ids[2])
        await r.until_written(3)
        later = await handle.describe()
    summary = (
        f"write batcher shard 0 of task queue {r.task_queue}: flushes many workflows' "
        "outcome writes; idle between flushes by design"
    )
    assert await first.static_summary() == summary
    details = await first.static_details()
    assert details is not None
    assert f"**Write batcher, shard 0 of task queue `{r.task_queue}`.**" in details
    assert "writes up to 100 of them in one statement" in details
    assert "or when the oldest has waited 0.1 s" in details
    assert "continues as new every 2 requests" in details
    assert "that is by design, not a stuck workflow" in details
    assert await first.memo_value("description") == summary
    assert later.run_id != first.run_id
    assert await later.memo_value("description") == summary
