"""Batches: upload a file to a new or open batch, list them, one in detail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from fleetbatch.api.deps import Context, Operator, Viewer
from fleetbatch.api.schemas import (
    MAX_INT,
    BatchDetail,
    BatchPage,
    BatchPublic,
    UploadPublic,
    problems,
)
from fleetbatch.api.uploads import OPENAPI_BODY, upload_file
from fleetbatch.api.views import batch_detail

router = APIRouter(prefix="/api/batches", tags=["batches"])

ERRORS = problems(401, 403)
UPLOAD: dict[str, Any] = {
    "status_code": status.HTTP_201_CREATED,
    "response_model": UploadPublic,
    "responses": problems(401, 403, 404, 409, 413, 422, 503),
    "openapi_extra": OPENAPI_BODY,
}
"""Both upload routes: streamed multipart in, the upload's report out."""


@router.post("", **UPLOAD)
async def create_batch(request: Request, context: Context, _: Operator) -> UploadPublic:
    """Upload a file: valid rows are stored and run, rejected rows come back with line numbers.

    With ``batch_id`` of an open batch, the file joins it (same as ``/{batch_id}/files``).
    """
    return UploadPublic.model_validate(await upload_file(context, request))


@router.post("/{batch_id}/files", **UPLOAD)
async def add_file(batch_id: str, request: Request, context: Context, _: Operator) -> UploadPublic:
    """Add a late file to an existing batch; the running workflow takes it."""
    await context.store.batches.get(batch_id)
    return UploadPublic.model_validate(await upload_file(context, request, batch_id))


@router.get("", response_model=BatchPage, responses=ERRORS)
async def list_batches(
    context: Context,
    _: Viewer,
    status: Annotated[str | None, Query(description="open, running, completed, …")] = None,
    label: Annotated[
        str | None, Query(description="what the batch does: its command type, or its pipeline")
    ] = None,
    pipeline: Annotated[str | None, Query(description="vehicle or enrich")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> BatchPage:
    """Batches, newest first."""
    found, total = await context.store.batches.list(
        limit, offset, status=status or None, label=label or None, pipeline=pipeline or None
    )
    return BatchPage(
        batches=[BatchPublic.model_validate(b) for b in found],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{batch_id}", response_model=BatchDetail, responses=problems(401, 403, 404, 503))
async def get_batch(batch_id: str, context: Context, _: Viewer) -> BatchDetail:
    """A batch: settings, counts by status, rate, ETA, breaker, pause state, Temporal link."""
    return await batch_detail(context, batch_id)
