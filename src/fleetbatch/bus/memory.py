"""The in-process bus of single-process ``dev`` mode. It keeps nothing across restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from fleetbatch.bus.base import Bus, Handler, Subscription

log = logging.getLogger(__name__)


class _MemorySubscription(Subscription):
    def __init__(self, bus: MemoryBus, subject: str, handler: Handler) -> None:
        self._bus = bus
        self._subject = subject
        self._handler = handler
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(), name=f"bus:{subject}")

    async def _pump(self) -> None:
        while True:
            data = await self.queue.get()
            try:
                await self._handler(data)
            except Exception:
                # A handler must not kill the subscription; the message is dropped
                # as a real bus would dead-letter it after its redeliveries.
                log.exception("bus handler failed on %s", self._subject)

    async def close(self) -> None:
        self._bus.unsubscribe(self._subject, self)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class MemoryBus(Bus):
    """Fan-out to every subscriber of a subject, each with its own ordered queue."""

    def __init__(self) -> None:
        self._subs: dict[str, list[_MemorySubscription]] = {}

    async def publish(self, subject: str, messages: Sequence[bytes]) -> None:
        for sub in self._subs.get(subject, ()):
            for data in messages:
                sub.queue.put_nowait(data)

    async def subscribe(self, subject: str, handler: Handler) -> Subscription:
        sub = _MemorySubscription(self, subject, handler)
        self._subs.setdefault(subject, []).append(sub)
        return sub

    def unsubscribe(self, subject: str, sub: _MemorySubscription) -> None:
        """Forget ``sub`` (called by the subscription's ``close``)."""
        subs = self._subs.get(subject, [])
        if sub in subs:
            subs.remove(sub)
