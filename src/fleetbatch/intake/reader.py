"""Read a CSV or NDJSON file one line at a time, never the whole file.

Each physical line is one record (VIN files have no multi-line fields), which
keeps memory flat for any file size and gives exact line numbers.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

from fleetbatch.errors import InputFileError

MAX_LINE_BYTES = 64 * 1024
Format = Literal["csv", "ndjson"]


@dataclass(frozen=True, slots=True)
class RawRow:
    """A record as read: its line number, VIN field and optional command field."""

    line: int
    vin: str
    command: str | None


@dataclass(frozen=True, slots=True)
class BadRow:
    """A record that could not be parsed (wrong JSON, missing field)."""

    line: int
    value: str
    reason: str


def detect_format(filename: str | None, first_line: str) -> Format:
    """NDJSON for .ndjson/.jsonl names or a line starting with '{'; CSV otherwise."""
    name = (filename or "").lower()
    if name.endswith((".ndjson", ".jsonl")) or first_line.lstrip().startswith("{"):
        return "ndjson"
    return "csv"


def _lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, str]]:
    """Yield (line number, decoded line without its newline), skipping blank lines."""
    number = 0
    while True:
        raw = stream.readline(max_line_bytes + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            raise InputFileError(f"line {number}: longer than {max_line_bytes} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = f"byte 0x{raw[exc.start]:02x} at offset {exc.start}"
            raise InputFileError(f"line {number}: not valid UTF-8 ({bad})") from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        text = text.rstrip("\r\n")
        if text.strip():
            yield number, text


def _split_csv(text: str) -> list[str]:
    # Fast path: a plain line needs no csv machinery.
    if '"' not in text:
        return [f.strip() for f in text.split(",")]
    return [f.strip() for f in next(csv.reader([text]))]


def _csv_rows(
    lines: Iterator[tuple[int, str]], header: tuple[int, str]
) -> Iterator[RawRow | BadRow]:
    names = [n.lower() for n in _split_csv(header[1])]
    if "vin" not in names:
        found = ", ".join(n for n in names if n) or "nothing"
        raise InputFileError(f"line {header[0]}: no 'vin' column in the header (found: {found})")
    vin_at = names.index("vin")
    cmd_at = names.index("command") if "command" in names else None
    empty = True
    for number, text in lines:
        empty = False
        fields = _split_csv(text)
        if len(fields) <= vin_at:
            yield BadRow(number, text[:100], f"expected {len(names)} fields, got {len(fields)}")
            continue
        command = fields[cmd_at] if cmd_at is not None and cmd_at < len(fields) else None
        yield RawRow(number, fields[vin_at], command or None)
    if empty:
        raise InputFileError("file has a header but no rows to process")


def _ndjson_rows(lines: Iterator[tuple[int, str]]) -> Iterator[RawRow | BadRow]:
    for number, text in lines:
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadRow(number, text[:100], f"invalid JSON: {exc.msg}")
            continue
        if not isinstance(record, dict):
            yield BadRow(number, text[:100], "expected a JSON object")
            continue
        vin = record.get("vin")
        if not isinstance(vin, str):
            yield BadRow(number, text[:100], "no 'vin' string field")
            continue
        command = record.get("command")
        yield RawRow(number, vin, command if isinstance(command, str) and command else None)


def read_rows(
    stream: BinaryIO,
    *,
    filename: str | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[RawRow | BadRow]:
    """Parse ``stream`` lazily into rows.

    Raises:
        InputFileError: the file is empty, has no VIN column, is not UTF-8, or has
            a line longer than ``max_line_bytes``. It may be raised after some rows
            were yielded, so callers store rows in one transaction.
    """
    lines = _lines(stream, max_line_bytes)
    first = next(lines, None)
    if first is None:
        raise InputFileError("file is empty: no rows to process")
    if detect_format(filename, first[1]) == "ndjson":

        def chained() -> Iterator[tuple[int, str]]:
            yield first
            yield from lines

        yield from _ndjson_rows(chained())
    else:
        yield from _csv_rows(lines, first)
