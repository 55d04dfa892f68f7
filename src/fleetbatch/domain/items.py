"""Item statuses and identities."""

from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass

_EFFECT_NS = uuid.UUID("6f1c1c2e-8a43-4a55-9d0e-5b0f7f8f4e21")
_EFFECT_SHA1 = hashlib.sha1(_EFFECT_NS.bytes, usedforsecurity=False)


class ItemStatus(enum.StrEnum):
    """Where an item is. Every accepted item ends in exactly one terminal status."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """With the reason in the item's error."""
    SKIPPED = "skipped"
    """Not processed on purpose, with the reason (e.g. "owner has not consented")."""
    CANCELLED = "cancelled"


TERMINAL = frozenset(
    {ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.SKIPPED, ItemStatus.CANCELLED}
)


def effect_id_for(batch_id: str, key: str, redrive: int = 0) -> str:
    """The id of an item's effect on a downstream system: the same on
    every retry, so the receiving side can deduplicate; each redrive is a new effect."""
    suffix = f"/redrive-{redrive}" if redrive else ""
    # uuid.uuid5(_EFFECT_NS, name), without building a UUID object: intake computes
    # one per row, and the object's construction and str() were half its cost.
    sha1 = _EFFECT_SHA1.copy()
    sha1.update(f"{batch_id}/{key}{suffix}".encode())
    digest = bytearray(sha1.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class ItemRef:
    """What a chunk's step needs to process one item."""

    id: int
    key: str
    effect_id: str


@dataclass(frozen=True)
class Outcome:
    """An item's final state, written once per chunk in one bulk statement."""

    item_id: int
    status: ItemStatus
    attempts: int
    error: str | None = None
    answered_at: float | None = None
    """When the answer to the item's last attempt reached its step (Unix seconds);
    None when nothing answered it (it timed out, was cancelled, or has no attempts)."""
    attempt_timeout: float | None = None
    """How long an attempt waited for its answer, in seconds, when one timed out: every
    attempt before the last did, and the last one too when it failed unanswered."""


@dataclass(frozen=True)
class ChunkSpec:
    """A run of a batch's item ids: ids between ``first_id`` and ``last_id``
    inclusive that belong to the batch. Two integers in history, whatever the size."""

    first_id: int
    last_id: int
    size: int
