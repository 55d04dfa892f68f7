"""What a pipeline's row rules make of a row: an item, or a rejection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Accepted:
    """A row that becomes an item: its key and what else the step needs of it."""

    line: int
    key: str
    payload: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row that was refused, with the reason shown to the operator."""

    line: int
    value: str
    reason: str
