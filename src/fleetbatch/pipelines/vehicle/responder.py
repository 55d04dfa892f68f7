"""The response consumer: domain responses on the bus become workflow signals.

Responses are grouped per workflow and flushed every ``flush_interval`` (or
when ``max_group`` is reached), so a chunk of 500 vehicles costs a handful of
signals, not 500. A response's handler returns (and a durable bus acks it) only
once its signal was accepted, or once it was recorded as an orphan because its
workflow is gone or finished: a responder killed at any moment loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from fleetbatch.bus import RESPONSES_SUBJECT, Bus, ResponseMessage, Subscription
from fleetbatch.pipelines.vehicle.workflow import Responses, VehicleChunkWorkflow
from fleetbatch.store import Orphan, OrphanRepository


class _Group:
    """One workflow's responses waiting for its next signal, and the future their
    handlers wait on (one per group, not one per response)."""

    def __init__(self) -> None:
        self.responses: list[ResponseMessage] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


# Temporal is restarting or overloaded: worth another try from here. Any other
# error is the message's fault and fails its handler (the bus redelivers it,
# then dead-letters it).
_TRANSIENT = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.CANCELLED,
    }
)

log = logging.getLogger(__name__)


class Responder:
    """Subscribes to responses and signals the waiting chunk workflows."""

    def __init__(
        self,
        bus: Bus,
        client: Client,
        orphans: OrphanRepository,
        *,
        flush_interval: float = 0.05,
        max_group: int = 500,
    ) -> None:
        self._bus = bus
        self._client = client
        self._interval = flush_interval
        self._max_group = max_group
        self._orphans = orphans
        self._pending: defaultdict[str, _Group] = defaultdict(_Group)
        self._wake = asyncio.Event()
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.signals_sent = 0
        self.orphans_recorded = 0

    async def start(self) -> None:
        self._sub = await self._bus.subscribe(RESPONSES_SUBJECT, self._on_response)
        self._task = asyncio.create_task(self._flush_loop(), name="responder")

    async def stop(self) -> None:
        """Stop receiving and send what is buffered."""
        if self._sub is not None:
            await self._sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush()

    async def _on_response(self, data: bytes) -> None:
        message = ResponseMessage.decode(data)
        if not message.reply_to or not message.command_id:
            raise ValueError(f"response without reply_to or command_id: {data[:200]!r}")
        group = self._pending[message.reply_to]
        group.responses.append(message)
        if len(group.responses) >= self._max_group:
            self._wake.set()
        # A handler cancelled here (its process stopping) cancels the group's future:
        # none of the group's handlers returns, and a durable bus redelivers them all.
        await group.done

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        groups, self._pending = self._pending, defaultdict(_Group)
        if groups:
            await asyncio.gather(*(self._signal(wf, group) for wf, group in groups.items()))

    async def _signal(self, workflow_id: str, group: _Group) -> None:
        handle = self._client.get_workflow_handle(workflow_id)
        responses = group.responses
        signal = Responses(
            [r.command_id for r in responses],
            [r.ok for r in responses],
            [r.error for r in responses],
        )
        try:
            await handle.signal(VehicleChunkWorkflow.responses, signal)
            self.signals_sent += 1
        except RPCError as exc:
            if exc.status in _TRANSIENT:
                log.warning("signal to %s failed, will retry: %s", workflow_id, exc)
                again = self._pending[workflow_id]
                again.responses.extend(responses)
                again.done.add_done_callback(lambda retried: _settle_as(group, retried))
                return
            if exc.status != RPCStatusCode.NOT_FOUND:
                _settle(group, exc)
                return
            try:
                await self._record_orphans(workflow_id, responses)
            except Exception as failure:
                _settle(group, failure)
                return
        _settle(group)

    async def _record_orphans(self, workflow_id: str, responses: list[ResponseMessage]) -> None:
        log.warning(
            "%d orphan responses: workflow %s is gone or finished",
            len(responses),
            workflow_id,
            extra={"workflow_id": workflow_id, "batch_id": responses[0].batch_id},
        )
        await self._orphans.add(
            [Orphan(r.command_id, workflow_id, r.batch_id, r.vin, r.ok, r.error) for r in responses]
        )
        self.orphans_recorded += len(responses)


def _settle(group: _Group, error: BaseException | None = None) -> None:
    """Let the group's handlers return (and the bus ack them), or fail with ``error``
    (unless they were cancelled meanwhile)."""
    if group.done.done():
        return
    if error is None:
        group.done.set_result(None)
    else:
        group.done.set_exception(error)


def _settle_as(group: _Group, retried: asyncio.Future[None]) -> None:
    """Settle ``group`` as the later group its responses were retried in settled."""
    if retried.cancelled():
        group.done.cancel()
    else:
        _settle(group, retried.exception())
