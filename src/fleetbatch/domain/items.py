"""Item statuses and identities."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

_COMMAND_NS = uuid.UUID("6f1c1c2e-8a43-4a55-9d0e-5b0f7f8f4e21")


class ItemStatus(enum.StrEnum):
    """Where an item is. Every accepted item ends in exactly one terminal status."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED_NO_CONSENT = "skipped_no_consent"
    CANCELLED = "cancelled"


TERMINAL = frozenset(
    {ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.SKIPPED_NO_CONSENT, ItemStatus.CANCELLED}
)


def command_id_for(batch_id: str, vin: str, redrive: int = 0) -> str:
    """The command id for a VIN in a batch: the same on every retry and re-publish,
    so the domain can deduplicate. Each redrive of the batch is a new command."""
    suffix = f"/redrive-{redrive}" if redrive else ""
    return str(uuid.uuid5(_COMMAND_NS, f"{batch_id}/{vin}{suffix}"))


@dataclass(frozen=True)
class ItemRef:
    """What a chunk needs to command one vehicle."""

    id: int
    vin: str
    command_id: str


@dataclass(frozen=True)
class Outcome:
    """An item's final state, written once per chunk in one bulk statement."""

    item_id: int
    status: ItemStatus
    attempts: int
    error: str | None = None


@dataclass(frozen=True)
class ChunkSpec:
    """A run of a batch's item ids: ids between ``first_id`` and ``last_id``
    inclusive that belong to the batch. Two integers in history, whatever the size."""

    first_id: int
    last_id: int
    size: int
    vin: str | None = None
    """The VIN when the chunk holds exactly one item (per-VIN mode names its workflow by it)."""
