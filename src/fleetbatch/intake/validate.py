"""Row rules: a valid VIN and the batch's command.

Duplicates are found where the batch's items are, in the store, so memory
stays flat however large the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fleetbatch.domain import CommandType, vin_problem
from fleetbatch.domain.commands import COMMANDS
from fleetbatch.intake.reader import BadRow, RawRow


@dataclass(frozen=True, slots=True)
class Accepted:
    """A row that becomes an item."""

    line: int
    vin: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row that was refused, with the reason shown to the operator."""

    line: int
    value: str
    reason: str


def validate_rows(
    rows: Iterable[RawRow | BadRow], command: CommandType
) -> Iterator[Accepted | Rejection]:
    """Check each row on its own; VINs come out stripped and upper-cased."""
    for row in rows:
        if isinstance(row, BadRow):
            yield Rejection(row.line, row.value, row.reason)
            continue
        vin = row.vin.strip().upper()
        if row.command is not None and row.command != command.name:
            reason = (
                f"command {row.command!r} does not match the batch's command {command.name!r}"
                if row.command in COMMANDS
                else f"unknown command {row.command!r}"
            )
            yield Rejection(row.line, row.vin[:100], reason)
            continue
        problem = vin_problem(vin, require_check_digit=command.requires_check_digit)
        if problem is not None:
            yield Rejection(row.line, row.vin[:100], problem)
            continue
        yield Accepted(row.line, vin)
