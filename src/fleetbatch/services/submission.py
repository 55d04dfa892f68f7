"""Submitting a file: validate and store its rows, then signal-with-start the batch."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, BinaryIO

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from fleetbatch.config import Settings
from fleetbatch.domain import ItemStatus, check_tolerance
from fleetbatch.domain.policies import get_policy
from fleetbatch.domain.rollout import Rollout, check_rollout, rollout_from_options
from fleetbatch.domain.schedule import parse_time
from fleetbatch.errors import (
    BatchConflictError,
    ConfigError,
    NoValidRowsError,
    TemporalUnavailableError,
)
from fleetbatch.intake import read_rows
from fleetbatch.pipelines import get_pipeline
from fleetbatch.store import BatchRecord, BatchStatus, NewBatch, Store, UploadResult
from fleetbatch.workflows import BatchInput, BatchWorkflow, FileAdded
from fleetbatch.workflows import search_attributes as sa
from fleetbatch.workflows.ids import batch_workflow_id

DEFAULT_PIPELINE = "vehicle"
_BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def new_batch_id() -> str:
    """A readable, unique batch id."""
    return f"b{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


async def submit_file(
    store: Store,
    client: Client,
    settings: Settings,
    stream: BinaryIO,
    *,
    filename: str,
    pipeline: str | None = None,
    options: Mapping[str, Any] | None = None,
    batch_id: str | None = None,
    chunk_size: int | None = None,
    max_in_flight: int | None = None,
    priority: float | None = None,
    max_failures: str | None = None,
    rollout: Rollout | None = None,
) -> UploadResult:
    """Store a file's valid rows in a new or open batch and get the batch running.

    Args:
        pipeline: the new batch's pipeline (``vehicle`` when None); a file for an
            existing batch joins it with the batch's pipeline and options.
        options: the pipeline's options (``{"command": "lock_doors"}``).
        rollout: waves, gates and schedule for a new batch (``domain.rollout``,
            ``rollout_for``); None gives a new batch its command type's default
            policy (``ota_update``: ``cautious-ota``), or sends it at once.

    Raises:
        UnknownPipelineError: an unknown pipeline.
        UnknownCommandError: (vehicle) no command, or an unknown one.
        BatchConflictError: bad batch id, the batch runs another pipeline or command or
            was stopped, or batch settings differ from the existing batch's.
        ConfigError: a priority that is not positive, an unreadable failure tolerance
            or a pipeline option that is not valid.
        InputFileError: the file cannot be read; nothing of it is stored.
        NoValidRowsError: a file with no valid row left the batch without items: it is
            stored closed (aborted) with the rejections, and nothing runs.
        TemporalUnavailableError: Temporal cannot be used; checked before storing.
    """
    batch_id = batch_id or new_batch_id()
    if not _BATCH_ID.fullmatch(batch_id) or ".." in batch_id:
        raise BatchConflictError(
            f"invalid batch id {batch_id!r}: use 1-64 letters, digits, '.', '_' or '-' (no '..')"
        )
    await check_namespace(client)
    existing = await store.batches.find(batch_id)
    given = {k: v for k, v in (options or {}).items() if v is not None}
    if existing is not None and (pipeline is None or pipeline == existing.pipeline) and not given:
        kind, checked = get_pipeline(existing.pipeline), existing.options
    else:
        name = pipeline or (existing.pipeline if existing else DEFAULT_PIPELINE)
        kind = get_pipeline(name)
        checked = kind.options(given, settings)
    plan = kind.plan(checked, settings)
    if rollout is None and existing is None and plan.policy is not None:
        rollout = rollout_from_options(
            None, policy=get_policy(plan.policy, settings.rollout_policies)
        )
    if priority is not None and priority <= 0:
        raise ConfigError(f"invalid priority {priority:g}: a fairness weight must be above zero")
    tolerance = None if max_failures is None else check_tolerance(max_failures)
    waves = None if rollout is None else asdict(check_rollout(rollout))
    if existing is not None:
        for name, wanted, current in (
            ("chunk size", chunk_size, existing.chunk_size),
            ("max in flight", max_in_flight, existing.max_in_flight),
            ("priority", priority, existing.priority),
            ("max failures", tolerance, existing.max_failures),
            ("rollout", waves, existing.rollout),
        ):
            if wanted is not None and wanted != current:
                raise BatchConflictError(
                    f"batch {batch_id!r} runs with {name} {current}; "
                    f"{name} is set when a batch is created"
                )
    size = chunk_size or (
        existing.chunk_size if existing else plan.chunk_size or settings.chunk_size
    )
    window = max_in_flight or (
        existing.max_in_flight if existing else plan.max_in_flight or settings.max_in_flight
    )
    rows = read_rows(stream, filename=filename, key_field=kind.key_field)
    result = await store.uploads.store(
        batch_id,
        NewBatch(kind.name, plan.label, checked, size, window, priority or 1.0, tolerance, waves),
        filename,
        kind.validate(rows, checked, settings),
        key_name=kind.key_name,
    )
    if result.closed:
        raise NoValidRowsError(
            f"no valid rows in {filename!r} ({result.rejected:,} rejected): batch "
            f"{batch_id!r} is closed without running; its rejections report lists every row",
            result,
        )
    # Also starts items left pending by an earlier file whose start failed.
    if result.accepted or (await store.items.counts(batch_id))[ItemStatus.PENDING]:
        await start_batch(
            client, settings, store, batch_id, FileAdded(result.upload_id, result.accepted)
        )
    return result


def rollout_for(
    settings: Settings,
    *,
    policy: str | None = None,
    waves: str | None = None,
    start_at: str | None = None,
    end_at: str | None = None,
    windows: list[str] | None = None,
    **options: Any,
) -> Rollout | None:
    """The rollout a submit's options ask for (CLI and API): the named policy's, with
    the options given overriding it; times are ISO 8601 (UTC without an offset).

    Raises:
        UnknownPolicyError: no such policy (with the closest name).
        ConfigError: unreadable options.
    """
    chosen = None if policy is None else get_policy(policy, settings.rollout_policies)
    return rollout_from_options(
        waves,
        policy=chosen,
        start_at=None if start_at is None else parse_time(start_at),
        end_at=None if end_at is None else parse_time(end_at),
        windows=windows or (),
        **options,
    )


async def check_namespace(client: Client) -> None:
    """Fail before anything is stored when Temporal or its namespace is not there.

    Raises:
        TemporalUnavailableError: with the server's reason.
    """
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
    except RPCError as exc:
        raise TemporalUnavailableError(
            f"Temporal namespace {client.namespace!r} is not usable: {exc.message}"
        ) from None


def batch_input(settings: Settings, batch: BatchRecord) -> BatchInput:
    """How the batch workflow runs ``batch``."""
    pipeline = get_pipeline(batch.pipeline)
    plan = pipeline.plan(batch.options, settings)
    return BatchInput(
        batch_id=batch.id,
        pipeline=batch.pipeline,
        chunk_workflow=pipeline.chunk_workflow,
        chunk_size=batch.chunk_size,
        max_in_flight=batch.max_in_flight,
        step=plan.step,
        lease=plan.lease,
        search_attributes=plan.search_attributes,
        metric_labels=pipeline.metric_labels(plan.label),
        idle_close_after_seconds=settings.idle_close_after_seconds,
        search_keys_max=settings.search_keys_max,
        max_history_events=settings.max_history_events,
        priority=batch.priority,
        max_failures=batch.max_failures,
        rollout=None if batch.rollout is None else Rollout(**batch.rollout),
        write_shards=settings.write_shards,
        write_ack_timeout_seconds=settings.write_ack_timeout_seconds,
    )


async def start_batch(
    client: Client, settings: Settings, store: Store, batch_id: str, file: FileAdded
) -> None:
    """Signal-with-start: tell the running batch workflow about a file, or start it.

    Raises:
        TemporalUnavailableError: the start failed; the items stay stored and pending.
    """
    batch = await store.batches.get(batch_id)
    params = batch_input(settings, batch)
    try:
        await client.start_workflow(
            BatchWorkflow.run,
            params,
            id=batch_workflow_id(batch_id),
            task_queue=settings.temporal_task_queue,
            start_signal="file_added",
            start_signal_args=[file],
            search_attributes=sa.for_batch(batch_id, batch.pipeline, params.search_attributes),
        )
    except RPCError as exc:
        raise TemporalUnavailableError(
            f"batch {batch_id!r}: the items are stored but the batch workflow could not be "
            f"started ({exc.message}); submit the same file again once Temporal is reachable: "
            "its rows are skipped as duplicates and the batch starts"
        ) from None
    # Only from OPEN: a batch that already finished again keeps its COMPLETED.
    await store.batches.set_status(batch_id, BatchStatus.RUNNING, only_from=BatchStatus.OPEN)
