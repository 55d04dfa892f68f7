"""The figures taken around a run: when every item is terminal, and what the
run's workflow executions cost in history events."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from temporalio.client import Client

from fleetbatch.domain import TERMINAL
from fleetbatch.errors import FleetbatchError
from fleetbatch.store import Store


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


async def history_stats(client: Client, *, settle_seconds: float = 60.0) -> HistoryStats:
    """History lengths of every execution on the server, once none is running.

    Reads them from visibility (``list_workflows``), a page of 1,000 executions
    per call, instead of fetching each history: the server was started for this
    run alone, so everything listed belongs to it.
    """
    deadline = time.monotonic() + settle_seconds
    while (await client.count_workflows("ExecutionStatus = 'Running'")).count:
        if time.monotonic() > deadline:
            raise BenchError(f"workflows still running {settle_seconds:g}s after the batch ended")
        await asyncio.sleep(0.1)
    executions = events = longest = 0
    async for execution in client.list_workflows():
        executions += 1
        events += execution.history_length
        longest = max(longest, execution.history_length)
    return HistoryStats(executions, events, longest)
