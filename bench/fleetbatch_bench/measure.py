"""The figures taken around a run: when every item is terminal, what the run's
workflow executions cost in history events, and how many statements wrote outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHistory

from fleetbatch.activities.batcher_types import BATCHER_WORKFLOW
from fleetbatch.domain import TERMINAL
from fleetbatch.errors import FleetbatchError
from fleetbatch.services.batchers import batcher_statuses
from fleetbatch.store import Store
from fleetbatch.store.db import sync_engines
from fleetbatch_bench.actions import ActionCounts, count_actions


class BenchError(FleetbatchError):
    """Raised when a benchmark run stalls or ends with items not terminal."""


async def until_terminal(
    store: Store,
    batch_id: str,
    expected: int,
    *,
    interval: float = 0.1,
    stall_seconds: float = 180.0,
) -> tuple[dict[str, int], float]:
    """Poll the store until ``expected`` items of the batch are terminal.

    The interval grows with the query's own duration (ten times it) so polling
    a large batch never takes more than a tenth of the database's time.

    Returns:
        The item counts by status and the ``perf_counter`` time they were read.

    Raises:
        BenchError: no item became terminal for ``stall_seconds``.
    """
    last_done, last_change = -1, time.perf_counter()
    while True:
        asked = time.perf_counter()
        counts = await store.items.counts(batch_id)
        now = time.perf_counter()
        done = sum(counts[s] for s in TERMINAL)
        if done >= expected:
            return counts, now
        if done != last_done:
            last_done, last_change = done, now
        elif now - last_change > stall_seconds:
            raise BenchError(
                f"batch {batch_id} stalled at {done:,} of {expected:,} items terminal: {counts}"
            )
        await asyncio.sleep(max(interval, 10 * (now - asked)))


@dataclass(frozen=True)
class HistoryStats:
    """Every workflow execution (each run of a continued-as-new workflow counts) on the server."""

    executions: int
    events: int
    longest: int
    """The most events in one execution's history."""
    bytes: int = 0
    """The histories' sizes summed, as the server reports them (``history_size_bytes``)."""
    runs: tuple[Run, ...] = ()
    """Every execution listed, for reading their histories."""


@dataclass(frozen=True)
class Run:
    """One execution: which workflow type, workflow id and run."""

    workflow_type: str
    workflow_id: str
    run_id: str


async def history_stats(client: Client, *, settle_seconds: float = 60.0) -> HistoryStats:
    """History lengths of every execution on the server, once none but the write
    batchers is running.

    Reads them from visibility (``list_workflows``), a page of 1,000 executions
    per call, instead of fetching each history: the server was started for this
    run alone, so everything listed belongs to it.
    """
    deadline = time.monotonic() + settle_seconds
    # Write batchers run on by design: they wait for the next batch's writes.
    running = f"ExecutionStatus = 'Running' AND WorkflowType != '{BATCHER_WORKFLOW}'"
    while (await client.count_workflows(running)).count:
        if time.monotonic() > deadline:
            raise BenchError(f"workflows still running {settle_seconds:g}s after the batch ended")
        await asyncio.sleep(0.1)
    executions = events = longest = size = 0
    runs = []
    async for execution in client.list_workflows():
        executions += 1
        events += execution.history_length
        longest = max(longest, execution.history_length)
        size += execution.raw_info.history_size_bytes
        runs.append(Run(execution.workflow_type, execution.id, execution.run_id or ""))
    return HistoryStats(executions, events, longest, size, tuple(runs))


@dataclass(frozen=True)
class ActionFigures:
    """A run's billable Temporal Cloud actions (``fleetbatch_bench.actions``)."""

    counts: ActionCounts
    """By category, extrapolated from the sample where one was taken."""
    histories_read: int
    executions: int
    """Executions the counts stand for; more than ``histories_read`` when sampled."""

    @property
    def sampled(self) -> bool:
        return self.histories_read < self.executions


MAX_HISTORIES_PER_TYPE = 500
"""Histories read per workflow type; beyond, an evenly spread sample stands for all of
that type (a per-VIN run of a million would otherwise read a million histories)."""


async def billable_actions(
    client: Client,
    runs: Sequence[Run],
    *,
    per_type: int = MAX_HISTORIES_PER_TYPE,
    concurrency: int = 16,
) -> ActionFigures:
    """Count the billable actions of ``runs`` from their histories: every history of a
    workflow type when it has at most ``per_type`` executions, else an evenly spread
    sample of ``per_type`` of them, its counts scaled up to the type's executions."""
    by_type: dict[str, list[Run]] = {}
    for run in runs:
        by_type.setdefault(run.workflow_type, []).append(run)
    gate = asyncio.Semaphore(concurrency)

    async def fetch(run: Run) -> WorkflowHistory:
        async with gate:
            handle = client.get_workflow_handle(run.workflow_id, run_id=run.run_id or None)
            return await handle.fetch_history()

    total, read = ActionCounts(), 0
    for same in by_type.values():
        step = max(1, -(-len(same) // per_type))  # ceil: at most per_type read
        sample = same[::step]
        histories = await asyncio.gather(*(fetch(r) for r in sample))
        counted = count_actions(histories)
        total += counted.scaled(len(same) / len(sample))
        read += len(sample)
    return ActionFigures(ActionCounts(dict(total.by_category), read), read, len(runs))


class OutcomeWriteCounter:
    """Counts the statements that write items' outcomes on one store's engine: what
    the write batcher saves. Installed by the benchmark alone (the product keeps no
    counters of its own), as a SQLAlchemy ``before_cursor_execute`` listener.

    An outcome write is an ``UPDATE items SET status=…, attempts=…`` (``record_outcomes``
    runs one per distinct outcome of a call; in the benchmark, where every item
    succeeds at its first attempt, one per call). Putting items in flight, failing
    what a chunk left behind and closing a batch update other columns: not counted.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engines = sync_engines(engine)
        self.statements = 0
        """Outcome-writing statements sent to the database."""
        self.outcomes = 0
        """Items those statements carried (a repeated write carries its items again)."""

    def _seen(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        if not _OUTCOME_WRITE.match(statement):
            return
        self.statements += 1
        ids = _ITEM_IDS.search(statement)
        if ids is not None:
            self.outcomes += ids.group(1).count(",") + 1
        else:  # one item by id (``items.id = ?``), once per parameter set
            self.outcomes += len(parameters) if executemany else 1

    def install(self) -> None:
        for engine in self._engines:
            event.listen(engine, "before_cursor_execute", self._seen)

    def remove(self) -> None:
        for engine in self._engines:
            if event.contains(engine, "before_cursor_execute", self._seen):
                event.remove(engine, "before_cursor_execute", self._seen)


_OUTCOME_WRITE = re.compile(r"\s*UPDATE items SET status=[^,]+, attempts=", re.IGNORECASE)
_ITEM_IDS = re.compile(r"\bWHERE items\.id IN \(([^()]*)\)", re.IGNORECASE)


@contextlib.contextmanager
def counting_outcome_writes(store: Store) -> Iterator[OutcomeWriteCounter]:
    """Count the outcome writes on ``store``'s engine while the context lasts."""
    counter = OutcomeWriteCounter(store.engine)
    counter.install()
    try:
        yield counter
    finally:
        counter.remove()


@dataclass(frozen=True)
class WriteFigures:
    """How a run's outcomes reached the store."""

    store_writes: int
    """Outcome-writing statements (``OutcomeWriteCounter``): one per chunk directly,
    one per flush through batchers."""
    outcomes_written: int
    """Outcomes those statements carried; the item count when none was lost or repeated."""
    flushes: int = 0
    batched: int = 0
    """Requests the batchers wrote."""
    duplicates_dropped: int = 0
    continued_as_new: int = 0
    max_flush_latency_seconds: float = 0.0


async def write_figures(
    client: Client, counter: OutcomeWriteCounter, task_queue: str, shards: int
) -> WriteFigures:
    """The counted outcome writes and, with batchers, their ``stats`` summed."""
    statuses = await batcher_statuses(client, task_queue, shards)
    return WriteFigures(
        store_writes=counter.statements,
        outcomes_written=counter.outcomes,
        flushes=sum(s.stats.flushes for s in statuses),
        batched=sum(s.stats.written for s in statuses),
        duplicates_dropped=sum(s.stats.duplicates_dropped for s in statuses),
        continued_as_new=sum(s.stats.continued_as_new for s in statuses),
        max_flush_latency_seconds=max(
            (s.stats.max_flush_latency_seconds for s in statuses), default=0.0
        ),
    )
