"""The batch workflow: pages items, runs a sliding window of chunk workflows,
waits for late files, and closes with a summary.

Children report completion by signal and are started with ABANDON, so they
outlive this workflow's continue-as-new; the state carried across runs is the
paging cursor, the window and the counts — never items.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from fleetbatch import gauges
    from fleetbatch.activities.types import (
        CHUNK_DONE_SIGNAL,
        FINISH_BATCH,
        NEXT_CHUNKS,
        STOP_BATCH,
        ChunkResult,
        FinishBatchInput,
        FinishBatchResult,
        NextChunksInput,
        NextChunksResult,
        Notice,
        StopBatchInput,
    )
    from fleetbatch.domain import BreakerSeen, ChunkSpec, tolerance_exceeded
    from fleetbatch.domain.rollout import Rollout
    from fleetbatch.workflows import allowance, breaker_notices, waves, windows
    from fleetbatch.workflows import search_attributes as sa
    from fleetbatch.workflows.allowance import Allowance
    from fleetbatch.workflows.breaker_notices import BreakerNotices
    from fleetbatch.workflows.chunk import (
        CANCEL_SIGNAL,
        HOLD_SIGNAL,
        CancelChunk,
        ChunkInput,
        HoldChunk,
    )
    from fleetbatch.workflows.ids import batch_workflow_id, chunk_workflow_id
    from fleetbatch.workflows.options import RETRY, STORE_TIMEOUT
    from fleetbatch.workflows.pacing import Pacer
    from fleetbatch.workflows.rollout_state import rollout_states
    from fleetbatch.workflows.waves import WaveState
    from fleetbatch.workflows.windows import WindowState


@dataclass
class BatchState:
    """What one run hands to the next on continue-as-new."""

    cursor: int = 0
    ready: list[ChunkSpec] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    items_total: int = 0
    files: int = 0
    chunks_done: int = 0
    runs: int = 1
    started_at: float = 0.0
    paused: bool = False
    stop_status: str | None = None
    """``cancelled`` or ``aborted`` once the batch is stopping."""
    stop_reason: str | None = None
    chunks_told_to_stop: bool = False
    max_in_flight: int = 0
    """The window now (changed at run time)."""
    max_failures: str | None = None
    """Tolerated failures now, ``"5%"`` or a count; None tolerates all."""
    waves: WaveState = field(default_factory=WaveState)
    notices: list[Notice] = field(default_factory=list)
    """Webhook notices not yet handed to a notice workflow."""
    notices_sent: int = 0
    breakers: BreakerNotices = field(default_factory=BreakerNotices)
    """The breaker openings and closings noticed (with a webhook only)."""
    window: WindowState = field(default_factory=WindowState)
    """The schedule: start and end times, maintenance windows."""
    ramp_notified: int = 0
    """Items of the chunks started under the rollout's rate ramp."""
    ramp_next_at: float = 0.0
    """Workflow time (epoch seconds) from which the ramp lets the next chunk start."""


@dataclass
class BatchInput:
    batch_id: str
    pipeline: str
    chunk_workflow: str
    """The workflow type of the pipeline's chunks."""
    chunk_size: int
    max_in_flight: int
    step: dict[str, Any] = field(default_factory=dict)
    """The pipeline's step options, handed to every chunk as they are."""
    lease: bool = True
    """Chunks lease their items' keys across batches."""
    search_attributes: dict[str, str] = field(default_factory=dict)
    """The pipeline's keyword search attributes for every chunk, by name."""
    idle_close_after_seconds: float = 30.0
    search_keys_max: int = 100
    max_history_events: int = 2000
    """Continue-as-new past this many events, or earlier when Temporal suggests it."""
    state: BatchState | None = None
    priority: float = 1.0
    """Fairness weight against other batches sharing a rate."""
    max_failures: str | None = None
    write_shards: int = 0
    """Per-item chunks (chunk size 1) record outcomes through this many write
    batchers; 0 writes directly."""
    write_ack_timeout_seconds: float = 120.0
    metric_labels: dict[str, str] = field(default_factory=dict)
    """The labels of the batch's metrics (``Pipeline.metric_labels``)."""
    rollout: Rollout | None = None
    """Waves and their gates; None sends the batch at once."""


@dataclass
class CancelBatch:
    reason: str = "cancelled by an operator"


@dataclass
class ConfigureBatch:
    """Changes to a running batch; None leaves a setting as it is."""

    max_in_flight: int | None = None
    max_failures: str | None = None
    """A share (``"5%"``) or count of failed items; ``"off"`` tolerates every failure."""


@dataclass
class ApproveWave:
    wave: int
    """The wave (from 1) that waits for approval."""


WAVE_NOT_WAITING = "WaveNotWaiting"
"""ApplicationError type of an approval the batch is not waiting for."""


@dataclass
class FileAdded:
    """Signalled by intake after a file's items are committed."""

    upload_id: int
    accepted: int


@dataclass
class Progress:
    batch_id: str
    phase: str
    """``running``, ``paused``, ``stopping``, ``idle`` (waiting for late files) or ``finished``."""
    items_total: int
    counts: dict[str, int]
    """Outcomes of the chunks that have reported (what the failure tolerance judges);
    the store's counts (``store.counts``) are the batch's, item by item."""
    in_flight_chunks: int
    in_flight_items: int
    chunks_done: int
    files: int
    runs: int
    started_at: float
    paused: bool = False
    stop_reason: str | None = None
    max_in_flight: int = 0
    max_failures: str | None = None
    wave: int = 0
    """The current wave, from 1; 0 without waves."""
    waves_total: int = 0
    gate: str | None = None
    """``holding``, ``failed`` or ``waived`` (resumed past a failed gate)."""
    gate_reason: str | None = None
    """Why the gate failed, with the figures."""
    awaiting_approval: int | None = None
    """The wave (from 1) waiting for approval."""
    window: str | None = None
    """With a schedule: ``open``, ``waiting`` (before the start time or outside every
    maintenance window: nothing starts or is published) or ``ended`` (past the end time)."""
    window_until: float | None = None
    """When ``window`` changes next (seconds since the epoch): while waiting, when the
    next window opens; while open, when it closes. None: never."""
    rate_per_minute: float | None = None
    """The batch's own allowed rate now (a rate ramp), in items per minute."""
    in_flight_allowance: int | None = None
    """With an overshoot bound: items the abort rules let the batch have in flight now."""


@workflow.defn
class BatchWorkflow:
    @workflow.init
    def __init__(self, params: BatchInput) -> None:
        # Initialised from the input so signals delivered with the start see the state.
        self._batch_id = params.batch_id
        self._labels = params.metric_labels or {"pipeline": params.pipeline}
        self._rollout = params.rollout
        self._state = params.state or BatchState(
            max_in_flight=params.max_in_flight, max_failures=params.max_failures
        )
        # Both keep what they decide from in the state, so it carries across runs.
        rollout = params.rollout
        self._pacer = (
            None if rollout is None or rollout.ramp is None else Pacer(rollout.ramp, self._state)
        )
        self._allowance = (
            None
            if rollout is None or rollout.overshoot is None
            else Allowance(rollout, rollout.overshoot, self._state)
        )
        self._exhausted = False
        self._phase = "running"
        self._control = 0
        """Bumped by pause, resume, cancel and configure: the main loop wakes on it."""

    @workflow.signal
    def file_added(self, file: FileAdded) -> None:
        self._state.files += 1
        self._state.items_total += file.accepted
        self._exhausted = False

    @workflow.signal(name=CHUNK_DONE_SIGNAL)
    def chunk_done(self, result: ChunkResult) -> None:
        if self._state.in_flight.pop(result.workflow_id, None) is None:
            return  # a duplicate report
        self._state.chunks_done += 1
        self._report_in_flight()
        wave = self._state.waves.counts
        for status, n in result.counts.items():
            self._state.counts[status] = self._state.counts.get(status, 0) + n
            # Chunks never span waves and a wave starts once the last one settled:
            # a report that comes now is the current wave's.
            wave[status] = wave.get(status, 0) + n
        if result.breaker is not None:
            self._notice_breaker(result.breaker)

    @workflow.signal
    def pause(self) -> None:
        """Start no more chunks; those running finish."""
        self._state.paused = True
        self._control += 1

    @workflow.signal
    def resume(self) -> None:
        """Start chunks again; past a gate that paused the batch, the wave goes on unjudged."""
        self._state.paused = False
        if self._state.waves.gate == waves.GATE_FAILED:
            self._state.waves.gate = waves.GATE_WAIVED
        self._control += 1

    @workflow.update
    def approve_wave(self, request: ApproveWave) -> Progress:
        """Let the wave waiting for approval start; returns the batch's new state."""
        assert self._rollout is not None  # the validator let it through
        waves.begin_next(self._rollout, self._state.waves)
        self._control += 1
        return self.progress()

    @approve_wave.validator
    def _check_approval(self, request: ApproveWave) -> None:
        waiting = self._state.waves.awaiting_approval
        if waiting is None or self._state.stop_status is not None:
            raise ApplicationError(
                f"batch {self._batch_id!r} is not waiting for a wave's approval",
                type=WAVE_NOT_WAITING,
                non_retryable=True,
            )
        if request.wave != waiting:
            raise ApplicationError(
                f"batch {self._batch_id!r} waits for approval of wave {waiting}, "
                f"not wave {request.wave}",
                type=WAVE_NOT_WAITING,
                non_retryable=True,
            )

    @workflow.signal
    def cancel(self, request: CancelBatch) -> None:
        """Stop: running chunks cancel what they have not settled; every other
        open item ends ``cancelled``."""
        self._stop("cancelled", request.reason)

    @workflow.signal
    def configure(self, change: ConfigureBatch) -> None:
        if change.max_in_flight is not None and change.max_in_flight >= 1:
            self._state.max_in_flight = change.max_in_flight
        if change.max_failures is not None:
            off = change.max_failures == "off"
            self._state.max_failures = None if off else change.max_failures
        self._control += 1

    def _stop(self, status: str, reason: str) -> None:
        if self._state.stop_status is None:
            self._state.stop_status, self._state.stop_reason = status, reason
            workflow.logger.info("batch %s %s: %s", self._batch_id, status, reason)
        self._control += 1

    @workflow.query
    def progress(self) -> Progress:
        s = self._state
        phase = self._phase
        if phase != "finished" and s.stop_status is not None:
            phase = "stopping"
        elif phase != "finished" and s.paused:
            phase = "paused"
        return Progress(
            batch_id=self._batch_id,
            phase=phase,
            items_total=s.items_total,
            counts=dict(s.counts),
            in_flight_chunks=len(s.in_flight),
            in_flight_items=sum(s.in_flight.values()),
            chunks_done=s.chunks_done,
            files=s.files,
            runs=s.runs,
            started_at=s.started_at,
            paused=s.paused,
            stop_reason=s.stop_reason,
            max_in_flight=s.max_in_flight,
            max_failures=s.max_failures,
            **self._wave_progress(),
            **self._window_progress(),
        )

    def _window_progress(self) -> dict[str, Any]:
        if self._rollout is None or not self._rollout.scheduled:
            return {}
        w = self._state.window
        return {"window": w.state, "window_until": w.until}

    def _wave_progress(self) -> dict[str, Any]:
        if self._rollout is None:
            return {}
        shown: dict[str, Any] = {}
        if self._pacer is not None:
            shown["rate_per_minute"] = self._pacer.rate() * 60
        allowed = None if self._allowance is None else self._allowance.total()
        if allowed is not None:
            shown["in_flight_allowance"] = allowed
        if not self._rollout.staged:
            return shown
        w = self._state.waves
        return shown | {
            "wave": w.index + 1,
            "waves_total": waves.total(self._rollout, self._state.items_total),
            "gate": w.gate if self._rollout.gate_failures is not None else None,
            "gate_reason": w.gate_reason,
            "awaiting_approval": w.awaiting_approval,
        }

    @workflow.run
    async def run(self, params: BatchInput) -> dict[str, int]:
        if not self._state.started_at:
            self._state.started_at = workflow.now().timestamp()
        self._report_in_flight()
        # Read here: on eviction the coroutine is closed outside the workflow's loop,
        # where `workflow.info()` raises.
        run_id = workflow.info().run_id
        try:
            return await self._run(params)
        finally:
            # Finished, continued as new or evicted: this run's chunks leave the gauge.
            gauges.leave_window(run_id)
            gauges.leave_rollout(run_id)

    async def _run(self, params: BatchInput) -> dict[str, int]:
        while True:
            self._report_rollout()
            await self._send_notices()
            if self._history_full(params):
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._state.runs += 1
                workflow.continue_as_new(replace(params, state=self._state))
            if self._state.stop_status is None:
                failed = self._state.counts.get("failed", 0)
                why = tolerance_exceeded(self._state.max_failures, failed, self._state.items_total)
                if why is not None:
                    self._stop("aborted", why)
            if self._state.stop_status is None and self._rollout is not None:
                self._judge_gate(self._rollout)
            if self._state.stop_status is not None:
                await self._tell_chunks_to_stop()
                if self._state.in_flight:
                    await self._wait_for_change()
                    continue
                counts = await self._finish(params)
                if counts is not None:
                    return counts
                continue
            rollout = self._rollout
            if rollout is not None and rollout.scheduled and await self._outside_schedule(rollout):
                continue
            if self._rollout is not None and self._at_wave_end(self._rollout):
                await self._wait_for_change()  # for an approval (or a cancel)
                continue
            if await self._fill_window(params):
                continue
            if self._state.in_flight or self._state.paused:
                await self._wait_for_change()
                continue
            # Nothing in flight and nothing left to page: wait a while for late files.
            if await self._woken_while_idle(params):
                continue
            counts = await self._finish(params)
            if counts is not None:
                return counts

    def _judge_gate(self, rollout: Rollout) -> None:
        """Pause or abort the batch if the current wave's gate fails: judged as outcomes
        come, so a failing wave stops starting chunks before it ends."""
        w = self._state.waves
        why = waves.judge(rollout, w, self._state.items_total)
        if why is None:
            return
        w.gate, w.gate_reason = waves.GATE_FAILED, why
        self._notice("gate_failed", reason=why, wave=w.index + 1, action=rollout.on_gate_failure)
        if rollout.on_gate_failure == "abort":
            self._stop("aborted", why)
        else:
            workflow.logger.info("batch %s paused: %s", self._batch_id, why)
            self._state.paused = True
            self._control += 1

    def _at_wave_end(self, rollout: Rollout) -> bool:
        """Begin the next wave if the current one is settled and its gate held; True
        while a settled wave waits for approval."""
        s, w = self._state, self._state.waves
        if self._in_last_wave(rollout) or s.paused or s.in_flight or s.ready:
            return False
        if waves.room(rollout, w, s.items_total):
            return False
        if rollout.approve:
            if w.awaiting_approval is None:
                w.awaiting_approval = w.index + 2
                self._notice("wave_waiting", wave=w.awaiting_approval)
                workflow.logger.info(
                    "batch %s: wave %d waits for approval", self._batch_id, w.awaiting_approval
                )
            return True
        waves.begin_next(rollout, w)
        return False

    async def _outside_schedule(self, rollout: Rollout) -> bool:
        """Take the end time's action once it passes; outside every window (or before the
        start time) hold the running chunks and wait, on a durable timer, for the next
        one. True while the batch waits: it starts no chunk and publishes nothing."""
        s, w = self._state, self._state.window
        now = workflow.now()
        state = windows.now_state(rollout, now, ended=w.ended)
        if state.ended:
            w.ended = True
            self._end_schedule(rollout)
            if s.stop_status is not None:
                w.state, w.until = windows.WINDOW_ENDED, None
                return True
            state = windows.now_state(rollout, now, ended=True)
        w.until = None if state.until is None else state.until.timestamp()
        if state.open:
            w.state = windows.WINDOW_ENDED if w.ended else windows.WINDOW_OPEN
            closes = windows.window_closes(rollout, now)
            # Also when not held: a chunk whose publish found the window closed holds
            # itself until it learns the next window's end.
            if w.held or closes != w.closes:
                w.closes = closes
                await self._hold_chunks(False)
            return False
        w.state = windows.WINDOW_WAITING
        if not s.in_flight and not s.ready and self._exhausted:
            return False  # nothing left to start: the batch may close (it publishes nothing)
        if s.in_flight and not w.held:
            await self._hold_chunks(True)
        await self._wait_for_change()
        return True

    def _end_schedule(self, rollout: Rollout) -> None:
        assert rollout.end_at is not None
        when = datetime.fromtimestamp(rollout.end_at, UTC)
        reason = f"end time {when:%Y-%m-%d %H:%M:%S} UTC reached"
        if rollout.on_end == "cancel":
            self._stop("cancelled", reason)
            return
        workflow.logger.info("batch %s paused: %s", self._batch_id, reason)
        self._state.paused = True
        self._control += 1

    async def _hold_chunks(self, held: bool) -> None:
        """Tell every running chunk that a window closed (publish nothing more) or
        opened; one that already ended is skipped."""
        self._state.window.held = held
        await self._signal_chunks(HOLD_SIGNAL, HoldChunk(held, self._state.window.closes))

    def _schedule_timeout(self) -> timedelta | None:
        """Until the schedule changes (a window opens or closes, the end time), if it will."""
        until = self._state.window.until
        if self._rollout is None or not self._rollout.scheduled or until is None:
            return None
        left = until - workflow.now().timestamp()
        # Stopping, or a time already past (the loop has not looked again): no timer.
        if self._state.stop_status is not None or left <= 0:
            return None
        return timedelta(seconds=left)

    def _notice(self, event: str, **details: Any) -> None:
        """Queue a webhook notice (sent from the main loop), if the batch has a webhook."""
        url = self._rollout.webhook_url if self._rollout is not None else None
        if url is not None:
            self._state.notices.append(Notice(self._batch_id, url, event, details))

    def _notice_breaker(self, seen: BreakerSeen) -> None:
        """Notice each opening of the breaker once, and its closing."""
        if self._rollout is None or self._rollout.webhook_url is None:
            return  # no webhook: nothing is recorded either
        notice = breaker_notices.change(self._state.breakers, seen)
        if notice is not None:
            self._notice(notice[0], **notice[1])

    async def _send_notices(self) -> None:
        """Start a notice workflow per queued notice and go on: ABANDON, never awaited,
        so a receiver that is down delays nothing."""
        while self._state.notices:
            notice = self._state.notices.pop(0)
            self._state.notices_sent += 1
            await workflow.start_child_workflow(
                "NoticeWorkflow",
                notice,
                # From the batch id, not the run's workflow id: a replay names it alike.
                id=f"{batch_workflow_id(self._batch_id)}-notice-{self._state.notices_sent}",
                parent_close_policy=ParentClosePolicy.ABANDON,
            )

    def _in_last_wave(self, rollout: Rollout) -> bool:
        return self._state.waves.index + 1 >= waves.total(rollout, self._state.items_total)

    async def _woken_while_idle(self, params: BatchInput) -> bool:
        """Wait for late files; True if a file or an operator came before the timeout."""
        self._phase = "idle"
        control = self._control
        try:
            await workflow.wait_condition(
                lambda: not self._exhausted or self._control != control,
                timeout=timedelta(seconds=params.idle_close_after_seconds),
            )
        except TimeoutError:
            return False
        self._phase = "running"
        return True

    async def _finish(self, params: BatchInput) -> dict[str, int] | None:
        """Close the batch in the store; None if items turned up meanwhile and it goes on."""
        s = self._state
        done: FinishBatchResult = await workflow.execute_activity(
            FINISH_BATCH,
            FinishBatchInput(params.batch_id, s.stop_status, s.stop_reason),
            result_type=FinishBatchResult,
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=RETRY,
        )
        if done.open_items or (not self._exhausted and s.stop_status is None):
            # Pending items: a file committed whose signal is still on its way, or
            # (PostgreSQL) one whose ids sit below the cursor because a later file
            # committed first. Not exhausted: a file was signalled while closing.
            # Nothing is in flight, so paging from the start is safe.
            s.cursor = 0
            self._exhausted = False
            self._phase = "running"
            return None
        self._phase = "finished"
        workflow.logger.info("batch %s finished: %s", params.batch_id, done.counts)
        self._notice("finished", status=s.stop_status or "completed", counts=done.counts)
        await self._send_notices()
        return done.counts

    def _history_full(self, params: BatchInput) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= params.max_history_events
        )

    async def _fill_window(self, params: BatchInput) -> bool:
        """Start chunks while the window has room; True if anything was started (or a
        rate ramp's timer ran)."""
        if self._state.paused:
            return False
        window = self._state.max_in_flight or params.max_in_flight
        room = window - len(self._state.in_flight)
        if room <= 0:
            return False
        items_room = None if self._allowance is None else self._allowance.room()
        if items_room is not None and items_room <= 0:
            return False  # the abort rules afford no more in flight until chunks report
        paging = not self._state.ready and not self._exhausted
        if paging and not await self._page(params, window, room, items_room):
            return False
        if not self._state.ready:
            return False
        if self._pacer is not None:
            if await self._wait_for_ramp(self._pacer):
                return True
            room = 1
        starting = self._state.ready[:room]
        if items_room is not None:
            starting = allowance.fitting(starting, items_room)
            if not starting:
                if not self._state.in_flight:
                    self._repage()  # paged before the budget shrank: in smaller chunks
                    return True
                return False
        self._state.ready = self._state.ready[len(starting) :]
        if self._pacer is not None:
            slot = self._pacer.slot(starting[0].size, workflow.now().timestamp())
            await self._start_chunk(params, starting[0], slot)
            self._report_in_flight()
            return True
        await asyncio.gather(*(self._start_chunk(params, c) for c in starting))
        self._report_in_flight()
        return True

    async def _page(
        self, params: BatchInput, window: int, room: int, items_room: int | None
    ) -> bool:
        """Page the next chunks into ``ready``; False if the wave has no room left."""
        # With waves, never past the current wave's end: its last chunk is cut short.
        # The last wave takes whatever is pending, late files and re-paged items too.
        limit = None
        rollout = params.rollout
        if rollout is not None and rollout.staged and not self._in_last_wave(rollout):
            limit = waves.room(rollout, self._state.waves, self._state.items_total)
            if limit == 0:
                return False
        size, chunks = params.chunk_size, window
        if items_room is not None:
            # Only what the abort rules afford now, in chunks that start at once: a
            # chunk publishes its round in one go, so its size is the publish slice.
            limit = items_room if limit is None else min(limit, items_room)
            size, chunks = min(size, items_room), room
        if self._pacer is not None:
            size, chunks = self._pacer.page(size, chunks)
        page: NextChunksResult = await workflow.execute_activity(
            NEXT_CHUNKS,
            NextChunksInput(params.batch_id, self._state.cursor, size, chunks, limit),
            result_type=NextChunksResult,
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=RETRY,
        )
        if page.chunks:
            self._state.ready = page.chunks
            self._state.cursor = page.chunks[-1].last_id
            self._state.waves.paged += sum(c.size for c in page.chunks)
        else:
            self._exhausted = True
        return True

    def _repage(self) -> None:
        """Give the ready chunks back (their items are still pending): the next page
        cuts them to what the abort rules afford now."""
        s = self._state
        s.cursor = s.ready[0].first_id - 1
        s.waves.paged -= sum(c.size for c in s.ready)
        s.ready = []

    async def _wait_for_ramp(self, pacer: Pacer) -> bool:
        """Sleep on a durable timer until the ramp lets the next chunk start (or an
        operator steps in); True if it slept."""
        delay = pacer.delay(workflow.now().timestamp())
        if delay <= 0:
            return False
        control = self._control
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._control != control, timeout=timedelta(seconds=delay)
            )
        return True

    def _report_in_flight(self) -> None:
        gauges.report_window(workflow.info().run_id, self._labels, len(self._state.in_flight))

    def _report_rollout(self) -> None:
        """The rollout state gauges, set as the main loop goes round and before it waits:
        a wave, gate or window state shows by the time the batch waits in it."""
        s = self._state
        rate = 0.0 if self._pacer is None else self._pacer.rate()
        states = rollout_states(self._rollout, s.waves, s.window)
        gauges.report_rollout(workflow.info().run_id, self._labels, states, rate)

    async def _start_chunk(
        self, params: BatchInput, chunk: ChunkSpec, slot: tuple[float, float] | None = None
    ) -> None:
        """``slot``: under a rate ramp, when the chunk may publish and how fast."""
        child_id = chunk_workflow_id(params.batch_id, chunk)
        # Registered before the start resolves: a fast child may report first.
        self._state.in_flight[child_id] = chunk.size
        await workflow.start_child_workflow(
            params.chunk_workflow,
            ChunkInput(
                batch_id=params.batch_id,
                batch_workflow_id=workflow.info().workflow_id,
                chunk=chunk,
                pipeline=params.pipeline,
                step=params.step,
                lease=params.lease,
                priority=params.priority,
                search_keys_max=params.search_keys_max,
                write_shards=params.write_shards if params.chunk_size == 1 else 0,
                write_ack_timeout_seconds=params.write_ack_timeout_seconds,
                window_end=self._state.window.closes,
                publish_at=None if slot is None else slot[0],
                publish_pace=None if slot is None else slot[1],
            ),
            id=child_id,
            # ABANDON: children must survive this run's continue-as-new. A failed
            # chunk takes neither its siblings nor the batch down: it reports by
            # signal whatever happens, and its items are failed at the close.
            parent_close_policy=ParentClosePolicy.ABANDON,
            search_attributes=sa.for_batch(
                params.batch_id, params.pipeline, params.search_attributes
            ),
        )

    async def _wait_for_change(self) -> None:
        """Sleep until a chunk finishes, a file arrives or an operator steps in."""
        self._report_rollout()
        in_flight = len(self._state.in_flight)
        exhausted = self._exhausted
        control = self._control
        timeout = self._schedule_timeout()  # None (no schedule): the same wait as ever
        # A timeout: the schedule changes now, and the main loop looks again.
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: (
                    len(self._state.in_flight) != in_flight
                    or self._exhausted != exhausted
                    or self._control != control
                ),
                timeout=timeout,
            )

    async def _tell_chunks_to_stop(self) -> None:
        """Signal every running chunk once; one that already ended is skipped."""
        if self._state.chunks_told_to_stop:
            return
        self._state.chunks_told_to_stop = True
        # First in the store, which every publish checks: an abort stops publishing
        # as at once as a cancel does (a cancel recorded it before its signal).
        await workflow.execute_local_activity(
            STOP_BATCH,
            StopBatchInput(self._batch_id),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=RETRY,
        )
        await self._signal_chunks(
            CANCEL_SIGNAL, CancelChunk(self._state.stop_reason or "batch stopped")
        )

    async def _signal_chunks(self, signal: str, request: Any) -> None:
        """Signal every running chunk at once; one that already ended is skipped."""

        async def tell(child_id: str) -> None:
            try:
                await workflow.get_external_workflow_handle(child_id).signal(signal, request)
            except Exception as exc:  # it ended meanwhile; its report is on the way
                workflow.logger.info("chunk %s not told %s: %s", child_id, signal, exc)

        await asyncio.gather(*(tell(c) for c in list(self._state.in_flight)))
