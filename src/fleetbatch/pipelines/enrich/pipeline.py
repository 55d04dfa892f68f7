"""The enrichment pipeline as the engine sees it (registered on import)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict
from typing import Any

from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError
from fleetbatch.intake import Accepted, BadRow, RawRow, Rejection
from fleetbatch.pipelines import register
from fleetbatch.pipelines.base import BatchPlan, Pipeline, WorkerContext
from fleetbatch.pipelines.enrich.activities import EnrichActivities
from fleetbatch.pipelines.enrich.rows import validate_users
from fleetbatch.pipelines.enrich.types import WORKFLOW_NAME, EnrichStep
from fleetbatch.pipelines.enrich.workflow import EnrichChunkWorkflow

FORMATS = ("jsonl", "csv")


class EnrichPipeline(Pipeline):
    name = "enrich"
    key_field = "user_id"
    key_name = "user_id"
    chunk_workflow = WORKFLOW_NAME
    description = "enrich every user through an HTTP service; one result file per chunk"

    def options(self, given: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
        unknown = sorted(set(given) - {"format"})
        if unknown:
            raise ConfigError(
                f"the enrich pipeline takes no option {unknown[0]!r} (it takes: format)"
            )
        fmt = str(given.get("format") or "jsonl").lower()
        if fmt not in FORMATS:
            raise ConfigError(f"unknown output format {fmt!r}: use jsonl or csv")
        return {"format": fmt}

    def plan(self, options: Mapping[str, Any], settings: Settings) -> BatchPlan:
        # No leases: enriching a user twice at once (two batches) does no harm.
        step = EnrichStep(
            format=options["format"],
            heartbeat_timeout_seconds=settings.enrich_heartbeat_timeout_seconds,
        )
        return BatchPlan(label=self.name, step=asdict(step), lease=False)

    def validate(
        self, rows: Iterable[RawRow | BadRow], options: Mapping[str, Any], settings: Settings
    ) -> Iterator[Accepted | Rejection]:
        return validate_users(rows)

    def workflows(self) -> list[type]:
        return [EnrichChunkWorkflow]

    def activities(self, context: WorkerContext) -> list[Callable[..., Any]]:
        enrich = EnrichActivities(
            context.store, context.resources.get("enrich_client"), context.settings.data_dir
        )
        return [enrich.process_chunk]


PIPELINE = register(EnrichPipeline())
