"""Operators steering a batch: pause, resume, cancel, redrive, approve a wave."""

from __future__ import annotations

from fastapi import APIRouter

from fleetbatch.api.deps import Context, Operator
from fleetbatch.api.schemas import (
    ApproveRequest,
    ApproveResult,
    CancelRequest,
    ControlResult,
    RedriveRequest,
    RedriveResult,
    problems,
)
from fleetbatch.services import control

router = APIRouter(prefix="/api/batches", tags=["control"])

ERRORS = problems(401, 403, 404, 409, 503)
"""503: Temporal did not answer."""


@router.post("/{batch_id}/pause", response_model=ControlResult, responses=ERRORS)
async def pause(batch_id: str, context: Context, _: Operator) -> ControlResult:
    """Start no more chunks; running chunks finish."""
    await control.pause(context.client, context.store, batch_id)
    return ControlResult(batch_id=batch_id, action="pause", message="pausing")


@router.post("/{batch_id}/resume", response_model=ControlResult, responses=ERRORS)
async def resume(batch_id: str, context: Context, _: Operator) -> ControlResult:
    """Go on with a paused batch."""
    await control.resume(context.client, context.store, batch_id)
    return ControlResult(batch_id=batch_id, action="resume", message="resumed")


@router.post("/{batch_id}/approve", response_model=ApproveResult, responses=ERRORS)
async def approve(
    batch_id: str, body: ApproveRequest, context: Context, _: Operator
) -> ApproveResult:
    """Let the batch's wave that waits for approval start (409 when the batch waits
    for another wave's approval, or none); returns where the batch is then."""
    p = await control.approve_wave(context.client, context.store, batch_id, body.wave)
    return ApproveResult(
        batch_id=batch_id,
        action="approve",
        message=f"wave {body.wave} approved",
        wave=p.wave,
        waves_total=p.waves_total,
        awaiting_approval=p.awaiting_approval,
    )


@router.post(
    "/{batch_id}/cancel", response_model=ControlResult, responses={**ERRORS, **problems(413)}
)
async def cancel(
    batch_id: str, context: Context, _: Operator, body: CancelRequest | None = None
) -> ControlResult:
    """Stop the batch: every item not yet settled ends cancelled with the reason."""
    reason = (body or CancelRequest()).reason
    last = await control.cancel(context.client, context.store, batch_id, reason)
    return ControlResult(batch_id=batch_id, action="cancel", message=control.cancel_message(last))


@router.post("/{batch_id}/redrive", response_model=RedriveResult, responses=ERRORS)
async def redrive(
    batch_id: str, context: Context, _: Operator, body: RedriveRequest | None = None
) -> RedriveResult:
    """Run a finished batch's failed items (or those of the statuses asked for, with
    the reason asked for) again, each under a new command id."""
    ask = body or RedriveRequest()
    count = await control.redrive(
        context.client, context.settings, context.store, batch_id, ask.statuses, ask.reason
    )
    return RedriveResult(batch_id=batch_id, redriven=count)
