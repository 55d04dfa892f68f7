"""Live progress as server-sent events: a ``progress`` event every interval, ``end`` when done."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from fleetbatch.api.context import ApiContext
from fleetbatch.api.deps import Context, Viewer
from fleetbatch.api.schemas import ProgressPublic, problems
from fleetbatch.services.progress import snapshot

router = APIRouter(prefix="/api/batches", tags=["events"])


def sse(event: str, data: str) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {data}\n\n"


async def progress_events(
    context: ApiContext, request: Request, batch_id: str, interval: float
) -> AsyncIterator[str]:
    """Progress until the batch has settled (its final status is written), or the
    client goes away."""
    while True:
        snap = await snapshot(context.client, context.store, batch_id)
        yield sse("progress", ProgressPublic.of(snap).model_dump_json())
        if snap.settled:
            yield sse("end", "{}")
            return
        await asyncio.sleep(interval)
        if await request.is_disconnected():
            return


@router.get(
    "/{batch_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **problems(401, 403, 404),
    },
)
async def batch_events(
    batch_id: str,
    request: Request,
    context: Context,
    _: Viewer,
    interval: Annotated[float, Query(ge=0.2, le=60, description="seconds between events")] = 1.0,
) -> StreamingResponse:
    """``event: progress`` with the ProgressPublic JSON, then ``event: end`` once the batch
    has settled: completed, cancelled or aborted (or its workflow failed)."""
    await context.store.batches.get(batch_id)
    return StreamingResponse(
        progress_events(context, request, batch_id, interval),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
