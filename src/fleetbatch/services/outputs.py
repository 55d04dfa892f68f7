"""A batch's result files: what a pipeline's step wrote under the data directory
(the enrichment pipeline's one file per chunk), listed and opened by name."""

from __future__ import annotations

from pathlib import Path

from fleetbatch.config import Settings
from fleetbatch.errors import BatchNotFoundError
from fleetbatch.pipelines.enrich.output import OutputFile, list_output_files, output_dir
from fleetbatch.store import Store


async def output_files(store: Store, settings: Settings, batch_id: str) -> list[OutputFile]:
    """The batch's result files by name (none for a pipeline that writes none).

    Raises:
        BatchNotFoundError: no such batch.
    """
    await store.batches.get(batch_id)
    return list_output_files(output_dir(settings.data_dir, batch_id))


async def output_file(store: Store, settings: Settings, batch_id: str, name: str) -> Path:
    """The path of one of the batch's result files, found by its listed name only
    (a name is never joined to a path as given).

    Raises:
        BatchNotFoundError: no such batch, or no such file of the batch.
    """
    for found in await output_files(store, settings, batch_id):
        if found.name == name:
            return found.path
    raise BatchNotFoundError(f"batch {batch_id!r} has no result file {name!r}")
