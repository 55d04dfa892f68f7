"""Live progress for many subscribers at the cost of one: a broadcaster per batch.

Each progress event used to run its own Temporal query: 200 streams on one batch
filled the server's query buffer, cut streams without a word and slowed every other
request to seconds. Now the first subscriber of a batch starts its broadcaster,
which takes one snapshot per interval (the shortest its subscribers asked for) and
hands the same snapshot to all of them; the last one to leave stops it.

Streams are counted per caller (``Principal.subject``) and in all: past either
limit a new stream is refused (429, 503) before it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from itertools import count

from fastapi import HTTPException, status
from temporalio.service import RPCError

from fleetbatch.errors import FleetbatchError
from fleetbatch.services.progress import Snapshot

log = logging.getLogger(__name__)

Fetch = Callable[[str], Awaitable[Snapshot]]
"""How a broadcaster takes a batch's snapshot (``services.progress.snapshot``)."""

RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class Update:
    """One snapshot for every subscriber, or why there is none."""

    seq: int
    snapshot: Snapshot | None = None
    error: str | None = None

    @property
    def final(self) -> bool:
        """Nothing follows it: an error, or a batch that has settled."""
        return self.snapshot is None or self.snapshot.settled


def _reason(exc: Exception) -> str:
    if isinstance(exc, FleetbatchError):
        return str(exc)
    if isinstance(exc, RPCError):
        return f"progress is not available from Temporal: {exc.message}"
    log.exception("taking a progress snapshot failed")
    return f"progress is not available: {type(exc).__name__}"


class Broadcaster:
    """One batch's snapshots, taken once per interval and shared by its subscribers."""

    def __init__(self, batch_id: str, fetch: Fetch, on_idle: Callable[[], None]) -> None:
        self.batch_id = batch_id
        self._fetch = fetch
        self._on_idle = on_idle
        self._intervals: dict[int, float] = {}
        self._ids = count()
        self._latest = Update(0)
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> int:
        return len(self._intervals)

    async def updates(self, interval: float) -> AsyncGenerator[Update, None]:
        """Updates at most one per ``interval`` seconds (the final one always), until
        the final one."""
        me = next(self._ids)
        self._intervals[me] = interval
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"progress {self.batch_id}")
        try:
            seen, sent_at = 0, float("-inf")
            while True:
                update = await self._after(seen)
                seen = update.seq
                # A little early is on time: the shared clock is the shortest interval.
                if not update.final and time.monotonic() - sent_at < interval * 0.9:
                    continue
                sent_at = time.monotonic()
                yield update
                if update.final:
                    return
        finally:
            del self._intervals[me]
            if not self._intervals:
                await self._stop()

    async def _after(self, seen: int) -> Update:
        async with self._changed:
            await self._changed.wait_for(lambda: self._latest.seq > seen)
            return self._latest

    async def _run(self) -> None:
        seq = 0
        while self._intervals:
            seq += 1
            try:
                update = Update(seq, snapshot=await self._fetch(self.batch_id))
            except Exception as exc:  # every subscriber hears why, then its stream ends
                update = Update(seq, error=_reason(exc))
            async with self._changed:
                self._latest = update
                self._changed.notify_all()
            if update.final:
                return
            await asyncio.sleep(min(self._intervals.values(), default=0))

    async def _stop(self) -> None:
        self._on_idle()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class EventHub:
    """The broadcasters of the batches being watched, and the count of open streams."""

    def __init__(self, fetch: Fetch, *, per_caller: int, total: int) -> None:
        self._fetch = fetch
        self.per_caller = per_caller
        self.total = total
        self._broadcasters: dict[str, Broadcaster] = {}
        self._streams: dict[str, int] = {}

    @property
    def open_streams(self) -> int:
        return sum(self._streams.values())

    def broadcaster(self, batch_id: str) -> Broadcaster:
        """The batch's broadcaster, started by its first subscriber."""
        found = self._broadcasters.get(batch_id)
        if found is None:

            def forget() -> None:
                if self._broadcasters.get(batch_id) is found:
                    del self._broadcasters[batch_id]

            found = self._broadcasters[batch_id] = Broadcaster(batch_id, self._fetch, forget)
        return found

    def reserve(self, subject: str) -> Callable[[], None]:
        """Count a new stream for ``subject``; returns what releases it.

        Raises:
            HTTPException: 429 past the per-caller limit, 503 past the total one.
        """
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if self._streams.get(subject, 0) >= self.per_caller:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"this token has {self.per_caller} live event streams open, the most one "
                "token may hold: close one first",
                retry,
            )
        if self.open_streams >= self.total:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the API serves {self.total} live event streams, the most it holds at once: "
                "try again later",
                retry,
            )
        self._streams[subject] = self._streams.get(subject, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._streams[subject] -= 1
            if not self._streams[subject]:
                del self._streams[subject]

        return release
