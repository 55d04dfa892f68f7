"""A batch's items: filter by status, search by key (a VIN, a user id), page by cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fleetbatch.api.deps import Context, Viewer
from fleetbatch.api.schemas import MAX_INT, ItemHistoryPublic, ItemPage, problems
from fleetbatch.api.views import item_detail, item_page
from fleetbatch.domain import ItemStatus

router = APIRouter(prefix="/api/batches", tags=["items"])


@router.get(
    "/{batch_id}/items",
    response_model=ItemPage,
    responses=problems(401, 403, 404),
)
async def list_items(
    batch_id: str,
    context: Context,
    _: Viewer,
    status: Annotated[ItemStatus | None, Query()] = None,
    key: Annotated[
        str | None,
        Query(max_length=200, description="keys starting with this (VINs in any case)"),
    ] = None,
    after: Annotated[
        int, Query(ge=0, le=MAX_INT, description="the previous page's next_after")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> ItemPage:
    """Items in id (upload) order."""
    return await item_page(
        context,
        batch_id,
        after=after,
        limit=limit,
        status=None if status is None else status.value,
        key=key or None,
    )


@router.get(
    "/{batch_id}/items/{key}",
    response_model=ItemHistoryPublic,
    responses=problems(401, 403, 404),
)
async def get_item(batch_id: str, key: str, context: Context, _: Viewer) -> ItemHistoryPublic:
    """One item with every attempt of its command: when each went out, under which
    command id, what answered and when (or the timeout), and the final outcome."""
    return await item_detail(context, batch_id, key)
