"""Operators in control of a batch: pause, resume, cancel, reconfigure, redrive,
approve a wave."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from fleetbatch.config import Settings
from fleetbatch.domain import ItemStatus, check_tolerance
from fleetbatch.errors import BatchConflictError, ConfigError
from fleetbatch.services.submission import start_batch
from fleetbatch.store import Store
from fleetbatch.workflows import ApproveWave, BatchWorkflow, FileAdded, Progress
from fleetbatch.workflows.batch import WAVE_NOT_WAITING, CancelBatch, ConfigureBatch
from fleetbatch.workflows.ids import batch_workflow_id


async def _signal(client: Client, store: Store, batch_id: str, name: str, *args: Any) -> None:
    await store.batches.get(batch_id)  # BatchNotFoundError for an unknown id
    handle = client.get_workflow_handle_for(BatchWorkflow.run, batch_workflow_id(batch_id))
    try:
        await handle.signal(name, *args)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise BatchConflictError(f"batch {batch_id!r} is not running") from None
        raise


async def pause(client: Client, store: Store, batch_id: str) -> None:
    """Start no more chunks of the batch; running chunks finish.

    Raises:
        BatchNotFoundError: no such batch. BatchConflictError: it is not running.
    """
    await _signal(client, store, batch_id, "pause")


async def resume(client: Client, store: Store, batch_id: str) -> None:
    """Undo ``pause``."""
    await _signal(client, store, batch_id, "resume")


async def approve_wave(client: Client, store: Store, batch_id: str, wave: int) -> Progress:
    """Let the batch's wave ``wave`` (from 1), which waits for approval, start.

    Returns:
        The batch's progress once the wave has begun.

    Raises:
        BatchNotFoundError: no such batch. BatchConflictError: it is not running, or
        not waiting for that wave's approval (the workflow's reason).
    """
    await store.batches.get(batch_id)
    handle = client.get_workflow_handle_for(BatchWorkflow.run, batch_workflow_id(batch_id))
    try:
        return await handle.execute_update(BatchWorkflow.approve_wave, ApproveWave(wave))
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == WAVE_NOT_WAITING:
            raise BatchConflictError(cause.message) from None
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise BatchConflictError(f"batch {batch_id!r} is not running") from None
        raise


async def cancel(client: Client, store: Store, batch_id: str, reason: str) -> datetime | None:
    """Stop the batch: every item not yet settled ends ``cancelled`` with ``reason``.

    The stop is recorded in the store first, and every publish checks it: once this
    returns, nothing more is published for the batch.

    Returns:
        When the batch's last publish began (None: nothing was published).

    Raises:
        BatchNotFoundError: no such batch. BatchConflictError: it is not running.
    """
    await store.batches.get(batch_id)
    running = await _running(client, batch_id)
    last = await store.batches.request_stop(batch_id) if running else None
    await _signal(client, store, batch_id, "cancel", CancelBatch(reason))
    return last


def cancel_message(last_publish: datetime | None) -> str:
    """What an operator is told once a cancel is accepted."""
    if last_publish is None:
        return "cancelling: nothing more is published; nothing had been published"
    when = f"{last_publish:%Y-%m-%d %H:%M:%S} UTC"
    return f"cancelling: nothing more is published; the last publish began at {when}"


async def _running(client: Client, batch_id: str) -> bool:
    handle = client.get_workflow_handle_for(BatchWorkflow.run, batch_workflow_id(batch_id))
    try:
        return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise


async def configure(
    client: Client,
    store: Store,
    batch_id: str,
    *,
    max_in_flight: int | None = None,
    max_failures: str | None = None,
) -> ConfigureBatch:
    """Change a running batch's window and failure tolerance (``"off"`` tolerates all).

    Returns:
        The change as sent: the tolerance normalised (``" 5 %"`` is ``"5%"``).

    Raises:
        ConfigError: a window below 1, or an unreadable tolerance.
    """
    if max_in_flight is not None and max_in_flight < 1:
        raise ConfigError(f"invalid max in flight {max_in_flight}: at least 1 chunk")
    if max_failures is not None and max_failures != "off":
        max_failures = check_tolerance(max_failures)
    change = ConfigureBatch(max_in_flight, max_failures)
    await _signal(client, store, batch_id, "configure", change)
    if max_in_flight is not None or max_failures is not None:
        await store.batches.set_settings(
            batch_id, max_in_flight=max_in_flight, max_failures=max_failures
        )
    return change


def configure_message(change: ConfigureBatch) -> str:
    """What an operator is told once a change is accepted: the new settings."""
    said = []
    if change.max_in_flight is not None:
        said.append(f"at most {change.max_in_flight:,} chunks in flight")
    if change.max_failures == "off":
        said.append("no abort on failures")
    elif change.max_failures is not None:
        said.append(f"aborts past {change.max_failures} failed items")
    return "configured: " + ("; ".join(said) or "nothing changed")


REDRIVABLE = (ItemStatus.FAILED, ItemStatus.CANCELLED, ItemStatus.SKIPPED)


def redrive_statuses(names: Sequence[str] | None) -> list[ItemStatus]:
    """The statuses a redrive takes (failed when none is named).

    Raises:
        ConfigError: a status that is not failed, cancelled or skipped.
    """
    allowed = {s.value: s for s in REDRIVABLE}
    chosen = []
    for name in names or ["failed"]:
        if name not in allowed:
            raise ConfigError(f"cannot redrive {name!r} items: choose from {', '.join(allowed)}")
        chosen.append(allowed[name])
    return chosen


async def redrive(
    client: Client,
    settings: Settings,
    store: Store,
    batch_id: str,
    statuses: Sequence[str] | None = None,
    reason: str | None = None,
) -> int:
    """Run a finished batch's items again, each under a new command id: those that
    ended in ``statuses`` (failed, by default), and with ``reason`` as their error if
    given (a reason from the batch's grouped failures).

    Returns:
        How many items were redriven (0: nothing matched, nothing started).

    Raises:
        BatchNotFoundError: no such batch. BatchConflictError: it has not finished.
        ConfigError: a status that cannot be redriven.
    """
    chosen = redrive_statuses(statuses)
    count = await store.items.redrive(batch_id, chosen, error=reason)
    if count:
        # Signal-with-start: a batch workflow still closing takes the items as a late file.
        await start_batch(client, settings, store, batch_id, FileAdded(0, count))
    return count
