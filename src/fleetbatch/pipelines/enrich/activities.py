"""The enrichment step: one heartbeating activity per chunk.

It enriches the chunk's users one by one through the enrichment service,
records each user's outcome in the store as soon as it has it, then heartbeats
``i/n processed`` with the index of the last finished user. A retry after a
crash or a heartbeat timeout resumes after that index and also skips users an
earlier attempt recorded (the heartbeat the server kept may be a little older
than the last write): no user is enriched twice by a resumed chunk. Last, it
writes the chunk's output file from what the store holds, under a name made of
the batch and the chunk's item range, through a temporary file and a rename:
a retried chunk replaces its file, never adds a second one.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from fleetbatch import metrics
from fleetbatch.activities.types import INVALID_INPUT
from fleetbatch.domain import TERMINAL, ItemStatus, Outcome
from fleetbatch.pipelines.enrich.client import EnrichmentClient, EnrichResult, UserRecord
from fleetbatch.pipelines.enrich.output import output_dir, write_chunk_file
from fleetbatch.pipelines.enrich.types import PROCESS_CHUNK, ProcessChunkInput, ProcessChunkResult
from fleetbatch.store import Store


class EnrichActivities:
    """Built with the store, the service's client and where output files go."""

    def __init__(self, store: Store, client: EnrichmentClient | None, data_dir: Path) -> None:
        self._store = store
        self._client = client
        self._data_dir = data_dir

    @activity.defn(name=PROCESS_CHUNK)
    async def process_chunk(self, params: ProcessChunkInput) -> ProcessChunkResult:
        """Enrich, record and write out one chunk's users.

        Raises:
            ApplicationError: retried, with the setting to fix, when this worker has
                no enrichment service; non-retryable ``InvalidInput`` for an output
                format other than ``jsonl`` or ``csv``.
        """
        if params.format not in ("jsonl", "csv"):
            raise ApplicationError(
                f"unknown output format {params.format!r}: use jsonl or csv",
                type=INVALID_INPUT,
                non_retryable=True,
            )
        if self._client is None:
            raise ApplicationError(
                "this worker has no enrichment service: set FLEETBATCH_ENRICH_URL "
                "(or run it with the in-process simulators)"
            )
        rows = await self._store.items.rows(params.item_ids)
        details = activity.info().heartbeat_details
        start = int(details[0]) + 1 if details else 0
        sources: Counter[str] = Counter()
        total = len(rows)
        for index in range(start, total):
            row = rows[index]
            if row["status"] not in TERMINAL:
                row.update(await self._enrich(row, sources))
            activity.heartbeat(index, f"{index + 1}/{total} processed")
        rows = await self._store.items.rows(params.item_ids)
        directory = output_dir(self._data_dir, params.batch_id)
        path = write_chunk_file(
            directory,
            params.batch_id,
            params.first_id,
            params.last_id,
            [_record(row) for row in rows],
            params.format,  # type: ignore[arg-type]
        )
        counts = Counter(str(row["status"]) for row in rows)
        return ProcessChunkResult(dict(counts), dict(sources), path.name, start)

    async def _enrich(self, row: dict[str, Any], sources: Counter[str]) -> dict[str, Any]:
        """Enrich one user and record the outcome; the row's new fields."""
        assert self._client is not None
        payload = row["payload"] or {}
        user = UserRecord(
            row["key"], str(payload.get("email", "")), str(payload.get("country", ""))
        )
        found = await self._client.enrich(user)
        status, error = _status(found)
        await self._store.items.record_one(
            Outcome(row["id"], status, max(found.attempts, 1), error), _result(found)
        )
        sources[found.source] += 1
        activity.metric_meter().create_counter(
            metrics.ENRICH_RESULTS, "enriched users by where the record came from"
        ).add(1, {"source": found.source})
        return {"status": status.value, "error": error, "result": _result(found)}


def _status(found: EnrichResult) -> tuple[ItemStatus, str | None]:
    """A fallback record is a failed item, with the reason; a stale answer succeeded."""
    if found.source == "fallback":
        return ItemStatus.FAILED, f"fallback record: {found.reason}"
    return ItemStatus.SUCCEEDED, None


def _result(found: EnrichResult) -> dict[str, Any]:
    return {**found.data, "source": found.source}


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """A user's line in the output file: the row, its outcome and its record."""
    payload = row["payload"] or {}
    result = row["result"] or {}
    return {
        "user_id": row["key"],
        "email": payload.get("email"),
        "country": payload.get("country"),
        "status": row["status"],
        **{k: v for k, v in result.items() if k != "user_id"},
        **({"error": row["error"]} if row["error"] else {}),
    }
