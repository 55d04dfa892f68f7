"""Live progress as server-sent events: ``progress`` every interval, ``end`` when done,
``error`` (then the stream ends) when progress cannot be had."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from fleetbatch.api.broadcast import Broadcaster
from fleetbatch.api.deps import Context, Viewer
from fleetbatch.api.schemas import ProgressPublic, Responses, problems

router = APIRouter(prefix="/api/batches", tags=["events"])

RETRY_MS = 5000
"""How long a browser's EventSource waits before it reconnects to an ended stream."""

EVENT_STREAM: Responses = {
    200: {
        "description": "server-sent events: `progress` (data: ProgressPublic), then `end` "
        "(data: {}) once the batch has settled, or `error` (data: Problem) before the "
        "stream ends early",
        "content": {
            "text/event-stream": {
                # Open API 3.1 has the schema of an event stream describe each event.
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["progress", "end", "error"]},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "description": "progress: ProgressPublic; end: {}; error: Problem",
                        },
                    },
                },
                "example": 'event: progress\ndata: {"phase": "running", "done": 40}\n\n'
                "event: end\ndata: {}\n\n",
            }
        },
    },
    **problems(401, 403, 404, 429, 503),
}


def sse(event: str, data: str) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {data}\n\n"


async def progress_events(
    broadcaster: Broadcaster, request: Request, interval: float
) -> AsyncGenerator[str, None]:
    """Progress until the batch has settled (its final status is written), progress
    fails, or the client goes away."""
    yield f"retry: {RETRY_MS}\n\n"
    async with contextlib.aclosing(broadcaster.updates(interval)) as updates:
        async for update in updates:
            if update.snapshot is None:
                yield sse("error", json.dumps({"detail": update.error}))
                return
            yield sse("progress", ProgressPublic.of(update.snapshot).model_dump_json())
            if update.final:
                yield sse("end", "{}")
                return
            if await request.is_disconnected():
                return


class EventStream(StreamingResponse):
    """A stream that gives its slot back however it ends (done, error, disconnect)."""

    def __init__(self, content: AsyncGenerator[str, None], release: Callable[[], None]) -> None:
        self._events = content
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Closed here, not whenever it is collected: its subscription ends now.
            await self._events.aclose()
            self._release()


@router.get("/{batch_id}/events", response_class=StreamingResponse, responses=EVENT_STREAM)
async def batch_events(
    batch_id: str,
    request: Request,
    context: Context,
    caller: Viewer,
    interval: Annotated[float, Query(ge=0.2, le=60, description="seconds between events")] = 1.0,
) -> StreamingResponse:
    """``event: progress`` with the ProgressPublic JSON, then ``event: end`` once the batch
    has settled: completed, cancelled or aborted (or its workflow failed). All
    subscribers of a batch share one snapshot per interval; streams are limited per
    token (429) and in all (503)."""
    await context.store.batches.get(batch_id)
    release = context.events.reserve(caller.subject)
    broadcaster = context.events.broadcaster(batch_id)
    return EventStream(progress_events(broadcaster, request, interval), release)
