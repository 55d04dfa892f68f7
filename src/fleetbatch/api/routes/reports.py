"""CSV downloads: every item's final state, and the rejected rows of the batch's files."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from fleetbatch.api.deps import Context, Viewer
from fleetbatch.api.schemas import Responses, problems
from fleetbatch.services.reports import report_csv

router = APIRouter(prefix="/api/batches", tags=["reports"])

CSV: Responses = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    **problems(401, 403, 404),
}


def _download(chunks: AsyncIterator[str], filename: str) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{batch_id}/report.csv", response_class=StreamingResponse, responses=CSV)
async def item_report(batch_id: str, context: Context, _: Viewer) -> StreamingResponse:
    """Every item's status, attempts, command id and last error; formula-safe cells."""
    chunks = await report_csv(context.store, batch_id)
    return _download(chunks, f"{batch_id}-report.csv")


@router.get("/{batch_id}/rejections.csv", response_class=StreamingResponse, responses=CSV)
async def rejection_report(batch_id: str, context: Context, _: Viewer) -> StreamingResponse:
    """Every rejected row with its upload, line and reason; formula-safe cells."""
    chunks = await report_csv(context.store, batch_id, rejections=True)
    return _download(chunks, f"{batch_id}-rejections.csv")
