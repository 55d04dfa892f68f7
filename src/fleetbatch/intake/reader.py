"""Read a CSV or NDJSON file one line at a time, never the whole file.

Each physical line is one record (item files have no multi-line fields), which
keeps memory flat for any file size and gives exact line numbers. A pipeline
names its key field (``user_id``, say) and validates the rows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from fleetbatch.errors import InputFileError

MAX_LINE_BYTES = 64 * 1024
Format = Literal["csv", "ndjson"]


@dataclass(frozen=True, slots=True)
class RawRow:
    """A record as read: its line number, its key field and every field by its
    (lower-cased, for CSV) name, the key's too."""

    line: int
    key: str
    fields: dict[str, Any]


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
    lines: Iterator[tuple[int, str]], header: tuple[int, str], key_field: str
) -> Iterator[RawRow | BadRow]:
    names = [n.lower() for n in _split_csv(header[1])]
    if key_field not in names:
        found = ", ".join(n for n in names if n) or "nothing"
        raise InputFileError(
            f"line {header[0]}: no {key_field!r} column in the header (found: {found})"
        )
    key_at = names.index(key_field)
    empty = True
    for number, text in lines:
        empty = False
        fields = _split_csv(text)
        if len(fields) <= key_at:
            yield BadRow(number, text[:100], f"expected {len(names)} fields, got {len(fields)}")
            continue
        yield RawRow(number, fields[key_at], dict(zip(names, fields, strict=False)))
    if empty:
        raise InputFileError("file has a header but no rows to process")


def _ndjson_rows(lines: Iterator[tuple[int, str]], key_field: str) -> Iterator[RawRow | BadRow]:
    for number, text in lines:
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadRow(number, text[:100], f"invalid JSON: {exc.msg}")
            continue
        if not isinstance(record, dict):
            yield BadRow(number, text[:100], "expected a JSON object")
            continue
        key = record.get(key_field)
        if not isinstance(key, str):
            yield BadRow(number, text[:100], f"no {key_field!r} string field")
            continue
        yield RawRow(number, key, record)


def read_rows(
    stream: BinaryIO,
    *,
    filename: str | None = None,
    key_field: str,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[RawRow | BadRow]:
    """Parse ``stream`` lazily into rows whose key is the field ``key_field``.

    Raises:
        InputFileError: the file is empty, has no key column, is not UTF-8, or has
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

        yield from _ndjson_rows(chained(), key_field)
    else:
        yield from _csv_rows(lines, first, key_field)
