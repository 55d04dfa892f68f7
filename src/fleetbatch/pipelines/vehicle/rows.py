"""The vehicle pipeline's row rules: a valid VIN and the batch's command.

Duplicates are found where the batch's items are, in the store, so memory
stays flat however large the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fleetbatch.intake import Accepted, BadRow, RawRow, Rejection
from fleetbatch.pipelines.vehicle.commands import COMMANDS, CommandType
from fleetbatch.pipelines.vehicle.vin import vin_problem


def validate_rows(
    rows: Iterable[RawRow | BadRow], command: CommandType
) -> Iterator[Accepted | Rejection]:
    """Check each row on its own; VINs come out stripped and upper-cased."""
    for row in rows:
        if isinstance(row, BadRow):
            yield Rejection(row.line, row.value, row.reason)
            continue
        vin = row.key.strip().upper()
        given = row.fields.get("command")
        if isinstance(given, str) and given and given != command.name:
            reason = (
                f"command {given!r} does not match the batch's command {command.name!r}"
                if given in COMMANDS
                else f"unknown command {given!r}"
            )
            yield Rejection(row.line, row.key[:100], reason)
            continue
        problem = vin_problem(vin, require_check_digit=command.requires_check_digit)
        if problem is not None:
            yield Rejection(row.line, row.key[:100], problem)
            continue
        yield Accepted(row.line, vin)
