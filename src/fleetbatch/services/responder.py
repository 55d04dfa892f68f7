"""The response consumer: domain responses on the bus become workflow signals.

Responses are grouped per workflow and flushed every ``flush_interval`` (or
when ``max_group`` is reached), so a chunk of 500 vehicles costs a handful of
signals, not 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from fleetbatch.bus import RESPONSES_SUBJECT, Bus, ResponseMessage, Subscription
from fleetbatch.workflows import ChunkWorkflow, Response, Responses

log = logging.getLogger(__name__)


class Responder:
    """Subscribes to responses and signals the waiting chunk workflows."""

    def __init__(
        self,
        bus: Bus,
        client: Client,
        *,
        flush_interval: float = 0.05,
        max_group: int = 500,
    ) -> None:
        self._bus = bus
        self._client = client
        self._interval = flush_interval
        self._max_group = max_group
        self._pending: dict[str, list[ResponseMessage]] = defaultdict(list)
        self._wake = asyncio.Event()
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.signals_sent = 0
        self.orphans: list[ResponseMessage] = []
        """Responses whose workflow is gone or finished."""

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
        group = self._pending[message.reply_to]
        group.append(message)
        if len(group) >= self._max_group:
            self._wake.set()

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        groups, self._pending = self._pending, defaultdict(list)
        if groups:
            await asyncio.gather(*(self._signal(wf, rs) for wf, rs in groups.items()))

    async def _signal(self, workflow_id: str, responses: list[ResponseMessage]) -> None:
        handle = self._client.get_workflow_handle(workflow_id)
        signal = Responses.of([Response(r.command_id, r.ok, r.error) for r in responses])
        try:
            await handle.signal(ChunkWorkflow.responses, signal)
            self.signals_sent += 1
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                # Transient: put them back for the next flush.
                log.warning("signal to %s failed, will retry: %s", workflow_id, exc)
                self._pending[workflow_id].extend(responses)
                return
            for r in responses:
                log.warning(
                    "orphan response: workflow %s is gone or finished",
                    workflow_id,
                    extra={
                        "workflow_id": workflow_id,
                        "command_id": r.command_id,
                        "vin": r.vin,
                        "batch_id": r.batch_id,
                    },
                )
            self.orphans.extend(responses)
