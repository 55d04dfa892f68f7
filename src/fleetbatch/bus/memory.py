"""The in-process bus of single-process ``dev`` mode. It keeps nothing across restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Generator, Iterable, Sequence
from typing import Any

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
            # Each runs at once up to its first wait, and only then becomes a task:
            # one that never waits (a simulator's answer) costs no task.
            waiting = _start(self._handle(data) for data in batch)
            if waiting:
                await asyncio.gather(*waiting)

    async def close(self) -> None:
        self._bus.unsubscribe(self)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _start(coros: Iterable[Coroutine[Any, Any, None]]) -> list[asyncio.Task[None]]:
    """Run each coroutine up to its first wait (as Python 3.12's eager tasks do); the
    tasks that run the rest: one per future waited on, however many coroutines wait
    on it (the responder's handlers of one workflow all wait for its signal). Unlike
    tasks, the handlers share the pump's context variables (no handler sets any)."""
    return _resume(((coro, coro.send) for coro in coros), None)


def _resume(
    steps: Iterable[tuple[Coroutine[Any, Any, None], Callable[[Any], Any]]], value: Any
) -> list[asyncio.Task[None]]:
    """Take one step of each coroutine (``send(value)``, or ``throw`` a cancel); group
    those that wait again by what they wait on."""
    waits: dict[int, tuple[Any, list[Coroutine[Any, Any, None]]]] = {}
    stopped: BaseException | None = None
    for coro, step in steps:
        try:
            future = step(value)
        except StopIteration:
            continue
        except BaseException as exc:  # a cancel it let through: the others still get theirs
            stopped = stopped or exc
            continue
        # As a task does with the future its coroutine yields: the next coroutine that
        # awaits the same future must be free to.
        if getattr(future, "_asyncio_future_blocking", False):
            future._asyncio_future_blocking = False
        waits.setdefault(id(future), (future, []))[1].append(coro)
    tasks = [asyncio.create_task(_finish(future, group)) for future, group in waits.values()]
    if stopped is not None:
        raise stopped
    return tasks


async def _finish(future: Any, coros: list[Coroutine[Any, Any, None]]) -> None:
    """Wait for what the coroutines wait on, then resume them (a cancel is thrown into
    them, as into a task's coroutine), until each has returned."""
    try:
        await _Wait(future)
    except asyncio.CancelledError as cancel:
        rest = _resume(((coro, coro.throw) for coro in coros), cancel)
    else:
        rest = _resume(((coro, coro.send) for coro in coros), None)
    if rest:
        await asyncio.gather(*rest)


class _Wait:
    """Suspends the running task on the future a started coroutine yielded (or for one
    turn of the loop, on a bare yield), without taking its result: the coroutine
    takes it when resumed."""

    def __init__(self, future: Any) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, None]:
        if self._future is not None:
            self._future._asyncio_future_blocking = True  # what a task expects of it
        yield self._future


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
