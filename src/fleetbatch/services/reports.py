"""Batch reports: every item's final state, or the rejected rows of its files.

The CLI's ``report`` (CSV, or JSON Lines with ``--json``) and the HTTP API's CSV
downloads write the same rows. Cells are
made safe to open in a spreadsheet: a value a spreadsheet would read as a formula
(starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading
single quote, so it shows as text and never runs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from fleetbatch.store import Store

ITEM_FIELDS = ["key", "status", "attempts", "effect_id", "error", "result", "line", "updated_at"]
REJECTION_FIELDS = ["upload_id", "line", "value", "reason"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 500


def safe_cell(value: Any) -> Any:
    """``value``, with a quote in front when a spreadsheet would take it for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


async def report_rows(
    store: Store, batch_id: str, *, rejections: bool = False
) -> tuple[list[str], AsyncIterator[dict[str, Any]]]:
    """The report's fields, and its rows read from the store page by page (every
    item's final state, or the rejected rows of the batch's files).

    Raises:
        BatchNotFoundError: no such batch (before anything is read).
    """
    await store.batches.get(batch_id)
    if rejections:
        return REJECTION_FIELDS, store.uploads.stream_rejections(batch_id)
    return ITEM_FIELDS, store.items.stream(batch_id)


async def report_csv(
    store: Store, batch_id: str, *, rejections: bool = False
) -> AsyncIterator[str]:
    """The report as CSV text, a few hundred rows per piece, read from the store page by page.

    Raises:
        BatchNotFoundError: no such batch (before anything is yielded).
    """
    return csv_text(*await report_rows(store, batch_id, rejections=rejections))


async def csv_text(fields: list[str], rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """``rows`` as CSV text under a header of ``fields``, a few hundred rows per piece,
    formula-safe."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    pending = 0
    async for row in rows:
        writer.writerow({k: safe_cell(_text(row.get(k))) for k in fields})
        pending += 1
        if pending >= ROWS_PER_CHUNK:
            yield _drain(buffer)
            pending = 0
    yield _drain(buffer)


def _text(value: Any) -> Any:
    """A JSON value (an item's result) as compact JSON; others as they are."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
