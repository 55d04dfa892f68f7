"""Schedules on the time-skipping server: maintenance windows, a start and an end
time. Time is skipped by hand (``env.sleep``) so that it jumps only where a test
says; between jumps it runs in real time, as the domain simulator answers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from fleetbatch.bus import CommandMessage
from fleetbatch.config import CommandSettings
from fleetbatch.domain.rollout import Rollout
from fleetbatch.pipelines.vehicle.simulators import Decision
from fleetbatch.services import control
from support import Harness, harness, vins

# A dropped command waits 10 minutes for its answer before it is re-published.
_SLOW_TIMEOUT = {
    "breaker_min_calls": 1_000_000,
    "chunk_size": 10,
    "max_in_flight": 1,
    "commands": {"lock_doors": CommandSettings(rate="off", response_timeout_seconds=600)},
}


class Deliveries:
    """What the domain received, VIN by VIN; drops the first attempt of ``dropped``."""

    def __init__(self, dropped: set[str]) -> None:
        self.dropped = dropped
        self.vins: list[str] = []

    def __call__(self, message: CommandMessage) -> Decision:
        self.vins.append(message.vin)
        if message.vin in self.dropped and message.attempt == 1:
            return Decision.DROP
        return Decision.SUCCEED


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {status: n for status, n in counts.items() if n}


async def _skip_to(env: WorkflowEnvironment, when: datetime) -> None:
    await env.sleep(when - await env.get_current_time())


@contextlib.asynccontextmanager
async def _skipped_by_hand(
    env: WorkflowEnvironment, tmp_path: Path, sent: Deliveries, **settings: Any
) -> AsyncIterator[Harness]:
    """The harness with ``_SLOW_TIMEOUT`` (``settings`` over it), the domain's
    deliveries to ``sent``, and time skipped only where the test says."""
    async with harness(env.client, tmp_path, decide=sent, **{**_SLOW_TIMEOUT, **settings}) as h:
        with env.auto_time_skipping_disabled():
            yield h


async def test_nothing_is_published_outside_the_window(
    own_time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = own_time_skipping_env
    batch = vins(30)
    sent = Deliveries({batch[0]})
    async with _skipped_by_hand(env, tmp_path, sent) as h:
        now = await env.get_current_time()
        opens = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
        window = f"{opens.minute} {opens.hour} * * * 5m UTC"  # daily, 5 minutes
        upload = await h.submit(batch, rollout=Rollout(windows=[window]))
        bid = upload.batch_id
        before = await h.until_progress(bid, lambda p: p.window == "waiting")
        await asyncio.sleep(1)  # real time: no chunk starts before the window
        sent_before = len(sent.vins)
        await _skip_to(env, opens + timedelta(seconds=1))
        await h.until(lambda: len(sent.vins) == 10)  # the first chunk; one dropped
        inside = await h.progress(bid)
        # Past the window's end, then past the dropped command's response timeout:
        # its re-publish waits for the next window.
        await _skip_to(env, opens + timedelta(minutes=6))
        closed = await h.until_progress(bid, lambda p: p.window == "waiting")
        await _skip_to(env, opens + timedelta(minutes=20))
        await asyncio.sleep(1)
        sent_while_closed = len(sent.vins)
        held = await h.progress(bid)
        await _skip_to(env, opens + timedelta(days=1, seconds=1))
        counts = await h.result(bid)
    assert sent_before == 0
    assert before.window_until == opens.timestamp()
    assert (inside.window, inside.window_until) == (
        "open",
        (opens + timedelta(minutes=5)).timestamp(),
    )
    assert closed.window_until == (opens + timedelta(days=1)).timestamp()
    assert sent_while_closed == 10
    assert (held.in_flight_chunks, held.counts) == (1, {})
    # The next window: the held chunk re-published its command, the rest ran.
    assert _nonzero(counts) == {"succeeded": 30}
    assert sent.vins.count(batch[0]) == 2
    assert sorted(set(sent.vins)) == sorted(batch) and len(sent.vins) == 31


async def test_a_batch_waits_for_its_start_and_is_cancelled_at_its_end(
    own_time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = own_time_skipping_env
    batch = vins(20)
    sent = Deliveries({batch[0]})
    async with _skipped_by_hand(env, tmp_path, sent) as h:
        now = await env.get_current_time()
        start, end = now + timedelta(hours=1), now + timedelta(hours=1, minutes=5)
        rollout = Rollout(start_at=start.timestamp(), end_at=end.timestamp(), on_end="cancel")
        upload = await h.submit(batch, rollout=rollout)
        bid = upload.batch_id
        waiting = await h.until_progress(bid, lambda p: p.window == "waiting")
        await asyncio.sleep(1)
        sent_before = len(sent.vins)
        await _skip_to(env, start + timedelta(seconds=1))
        await h.until(lambda: len(sent.vins) == 10)
        await _skip_to(env, end + timedelta(seconds=1))
        counts = await h.result(bid)
        stored = await h.store.batches.get(bid)
    assert sent_before == 0 and waiting.window_until == start.timestamp()
    # The first chunk ran; its dropped command and the second chunk were cancelled.
    assert _nonzero(counts) == {"succeeded": 9, "cancelled": 11}
    assert len(sent.vins) == 10
    assert stored.status == "cancelled"
    assert stored.summary is not None
    assert stored.summary["reason"] == f"end time {end:%Y-%m-%d %H:%M:%S} UTC reached"


async def test_an_end_time_that_pauses_goes_on_when_resumed(
    own_time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = own_time_skipping_env
    batch = vins(20)
    sent = Deliveries({batch[0]})
    async with _skipped_by_hand(env, tmp_path, sent) as h:
        now = await env.get_current_time()
        end = now + timedelta(minutes=5)
        upload = await h.submit(batch, rollout=Rollout(end_at=end.timestamp()))
        bid = upload.batch_id
        await h.until(lambda: len(sent.vins) == 10)
        running: Any = await h.progress(bid)
        await _skip_to(env, end + timedelta(minutes=6))  # the dropped one re-published
        paused = await h.until_progress(
            bid, lambda p: p.phase == "paused" and p.in_flight_chunks == 0
        )
        await asyncio.sleep(0.5)
        sent_paused = len(sent.vins)
        await control.resume(h.client, h.store, bid)
        counts = await h.result(bid)
    assert (running.window, running.window_until) == ("open", end.timestamp())
    assert (paused.window, paused.window_until) == ("ended", None)
    assert sent_paused == 11  # the first chunk finished; the second waited
    assert _nonzero(counts) == {"succeeded": 20}


class WindowCloses:
    """The publishing worker's wall clock: real time for the first ``publishes``
    calls (inside the window), then ``after`` (past its end). Each publish asks it
    once, so the window closes with the rest of the publishes still queued, as on a
    rate-limited queue with a backlog."""

    def __init__(self, publishes: int) -> None:
        self.left = publishes
        self.after = 0.0

    def __call__(self) -> float:
        self.left -= 1
        return time.time() if self.left >= 0 else self.after


@pytest.mark.parametrize(
    ("rate", "inside", "sent_inside", "settled_inside"),
    [
        # On the rate-limited queue, one publish per item: 5 went before the close,
        # 5 queued ones ran after it; the first chunk holds.
        ("5/s", 5, 5, {}),
        # Without a rate, a round's first attempt goes in one call (with the round's
        # start): the first chunk's went, the second chunk's began after the close.
        ("off", 1, 10, {"succeeded": 10}),
    ],
)
async def test_publishes_queued_when_the_window_closes_wait_for_the_next(
    own_time_skipping_env: WorkflowEnvironment,
    tmp_path: Path,
    rate: str,
    inside: int,
    sent_inside: int,
    settled_inside: dict[str, int],
) -> None:
    env = own_time_skipping_env
    batch = vins(20)
    sent = Deliveries(set())
    clock = WindowCloses(inside)
    commands = {"lock_doors": CommandSettings(rate=rate, response_timeout_seconds=600)}
    async with _skipped_by_hand(env, tmp_path, sent, clock=clock, commands=commands) as h:
        now = await env.get_current_time()
        opens = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
        closes = opens + timedelta(minutes=5)
        clock.after = closes.timestamp()  # the worker's clock at the window's end
        window = f"{opens.minute} {opens.hour} * * * 5m UTC"
        upload = await h.submit(batch, rollout=Rollout(windows=[window]))
        bid = upload.batch_id
        await h.until_progress(bid, lambda p: p.window == "waiting")
        await _skip_to(env, opens + timedelta(seconds=1))
        await h.until(lambda: len(sent.vins) >= sent_inside)
        await asyncio.sleep(1)  # real time: the publishes past the end sent nothing
        sent_at_close = len(sent.vins)
        # The batch's own timer closes the window: the chunk already holds.
        await _skip_to(env, closes + timedelta(seconds=1))
        closed = await h.until_progress(bid, lambda p: p.window == "waiting")
        await asyncio.sleep(0.5)
        sent_while_closed = len(sent.vins)
        await _skip_to(env, opens + timedelta(days=1, seconds=1))
        counts = await h.result(bid)
        items = await h.items(bid)
        breaker = await h.store.breakers.get("lock_doors")
    assert sent_at_close == sent_while_closed == sent_inside
    assert (closed.in_flight_chunks, _nonzero(closed.counts)) == (1, settled_inside)
    # The next window published the held items, on their first attempt, and the rest.
    assert _nonzero(counts) == {"succeeded": 20}
    assert sorted(sent.vins) == sorted(batch)
    assert all(row["attempts"] == 1 for row in items.values())
    assert (breaker.state, breaker.failures) == ("closed", 0)
