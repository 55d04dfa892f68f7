"""The consuming side of the NATS bus: a durable pull consumer per subscription.

A message is acked only after its handler returned. A handler that raises gets
the message back after the next delay of ``backoff_seconds``; a message whose
delivery count passes ``max_deliver`` goes to the dead-letter sink and is
terminated, also when earlier deliveries never finished (the process died).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import nats
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import FetchTimeoutError

from fleetbatch.bus.base import Handler, Subscription

if TYPE_CHECKING:
    from fleetbatch.bus.nats import NatsBus

log = logging.getLogger(__name__)


class PullConsumer(Subscription):
    """One subscription's durable pull consumer: fetches, hands each message to the
    handler (up to ``max_in_hand`` at once), then acks, naks with backoff, or
    dead-letters it."""

    def __init__(
        self, bus: NatsBus, subject: str, psub: JetStreamContext.PullSubscription, handler: Handler
    ) -> None:
        self._bus = bus
        self._subject = subject
        self._psub = psub
        self._handler = handler
        self._in_hand: set[asyncio.Task[None]] = set()
        self._room = asyncio.Semaphore(bus.options.max_in_hand)
        self._task = asyncio.create_task(self._pull(), name=f"nats:{subject}")

    async def _pull(self) -> None:
        batch = min(256, self._bus.options.max_in_hand)
        while True:
            await self._room.acquire()
            self._room.release()
            try:
                msgs = await self._psub.fetch(batch, timeout=1.0)
            except (FetchTimeoutError, TimeoutError):
                continue
            except nats.errors.Error as exc:
                log.warning("fetch on %s failed, retrying: %s", self._subject, exc)
                await asyncio.sleep(1.0)
                continue
            for msg in msgs:
                await self._room.acquire()
                task = asyncio.create_task(self._handle(msg))
                self._in_hand.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_hand.discard(task)
        self._room.release()

    async def _handle(self, msg: Msg) -> None:
        options = self._bus.options
        deliveries = msg.metadata.num_delivered
        if deliveries > options.max_deliver:
            await self._give_up(msg, "handler did not finish (process stopped)", deliveries - 1)
            return
        try:
            await self._handler(msg.data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if deliveries >= options.max_deliver:
                await self._give_up(msg, error, deliveries)
                return
            delay = options.backoff_seconds[min(deliveries, len(options.backoff_seconds)) - 1]
            log.warning("handler failed on %s (delivery %d): %s", msg.subject, deliveries, error)
            await self._settle(msg.nak(delay=delay))
            return
        await self._settle(msg.ack())

    async def _settle(self, reply: Awaitable[None]) -> None:
        # A lost connection loses the ack, not the message: it comes back after ack_wait.
        try:
            await reply
        except nats.errors.Error as exc:
            log.warning("could not ack on %s: %s", self._subject, exc)

    async def _give_up(self, msg: Msg, error: str, deliveries: int) -> None:
        try:
            await self._bus.dead_letter(self._bus.logical(msg.subject), msg.data, error, deliveries)
        except Exception:
            # Not kept, so not dropped: the message comes back and is dead-lettered then.
            log.exception("could not dead-letter a message on %s; it comes back", msg.subject)
            await self._settle(msg.nak(delay=self._bus.options.backoff_seconds[-1]))
            return
        await self._settle(msg.term())

    async def close(self) -> None:
        self._bus.forget(self)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._in_hand:
            # Messages in hand finish (and are acked) before the process goes.
            await asyncio.wait(set(self._in_hand), timeout=self._bus.options.ack_wait_seconds)
        with contextlib.suppress(Exception):
            await self._psub.unsubscribe()
