"""CSV downloads: every item's final state, and the rejected rows of the batch's files."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import FileResponse, StreamingResponse

from fleetbatch.api.deps import Context, Viewer
from fleetbatch.api.schemas import OutputFilePublic, Responses, problems
from fleetbatch.services.outputs import output_file, output_files
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
    """Every item's key, status, attempts, effect (command) id, error and result;
    formula-safe cells."""
    chunks = await report_csv(context.store, batch_id)
    return _download(chunks, f"{batch_id}-report.csv")


@router.get("/{batch_id}/rejections.csv", response_class=StreamingResponse, responses=CSV)
async def rejection_report(batch_id: str, context: Context, _: Viewer) -> StreamingResponse:
    """Every rejected row with its upload, line and reason; formula-safe cells."""
    chunks = await report_csv(context.store, batch_id, rejections=True)
    return _download(chunks, f"{batch_id}-rejections.csv")


@router.get(
    "/{batch_id}/outputs", response_model=list[OutputFilePublic], responses=problems(401, 403, 404)
)
async def list_outputs(batch_id: str, context: Context, _: Viewer) -> list[OutputFilePublic]:
    """The batch's result files (enrich: one per chunk, named by its item range)."""
    found = await output_files(context.store, context.settings, batch_id)
    return [OutputFilePublic(name=f.name, size=f.size) for f in found]


@router.get(
    "/{batch_id}/outputs/{name}",
    response_class=FileResponse,
    responses={
        200: {
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            }
        },
        **problems(401, 403, 404),
    },
)
async def download_output(batch_id: str, name: str, context: Context, _: Viewer) -> FileResponse:
    """One result file, by the name the listing gives."""
    path = await output_file(context.store, context.settings, batch_id, name)
    media = "text/csv" if name.endswith(".csv") else "application/x-ndjson"
    return FileResponse(path, media_type=media, filename=name)
