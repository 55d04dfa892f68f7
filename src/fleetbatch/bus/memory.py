"""The in-process bus of single-process ``dev`` mode. It keeps nothing across restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from fleetbatch.bus.base import Bus, Handler, Subscription, subject_matches

log = logging.getLogger(__name__)


class _MemorySubscription(Subscription):
    def __init__(self, bus: MemoryBus, subject: str, handler: Handler) -> None:
        self._bus = bus
        self.subject = subject
        self._handler = handler
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(), name=f"bus:{subject}")

    async def _handle(self, data: bytes) -> None:
        try:
            await self._handler(data)
        except Exception:
            # A handler must not kill the subscription; the message is dropped
            # as a real bus would dead-letter it after its redeliveries.
            log.exception("bus handler failed on %s", self.subject)

    async def _pump(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            # Handlers of what arrived together run concurrently, as on a real bus:
            # one that waits (for a grouped signal, an answer) holds up no other.
            if len(batch) == 1:
                await self._handle(batch[0])
            else:
                await asyncio.gather(*(self._handle(data) for data in batch))

    async def close(self) -> None:
        self._bus.unsubscribe(self)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class MemoryBus(Bus):
    """Fan-out to every subscriber of a matching subject, each with its own queue."""

    def __init__(self) -> None:
        self._subs: list[_MemorySubscription] = []

    async def publish(self, subject: str, messages: Sequence[bytes]) -> None:
        for sub in self._subs:
            if subject_matches(sub.subject, subject):
                for data in messages:
                    sub.queue.put_nowait(data)

    async def subscribe(self, subject: str, handler: Handler) -> Subscription:
        sub = _MemorySubscription(self, subject, handler)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: _MemorySubscription) -> None:
        """Forget ``sub`` (called by the subscription's ``close``)."""
        if sub in self._subs:
            self._subs.remove(sub)
