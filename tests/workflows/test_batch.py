"""Batch behaviour on the time-skipping server: windows, continue-as-new, late files, intake."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from fleetbatch.domain import effect_id_for
from fleetbatch.errors import BatchConflictError
from fleetbatch.store.counts import Changes, apply
from fleetbatch.store.tables import item_attempts, items
from fleetbatch.workflows.ids import batch_workflow_id
from support import harness, vins


async def _run_lengths(client: Client, workflow_id: str, first_run_id: str) -> list[int]:
    """History length of every run of a continued-as-new chain, first to last."""
    lengths, run_id = [], first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else ""
        )
    return lengths


@pytest.mark.slow
async def test_large_batch_continues_as_new_and_keeps_every_item(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    batch = vins(3000)
    async with harness(
        time_skipping_env.client,
        tmp_path,
        chunk_size=10,
        max_in_flight=30,
        max_history_events=500,
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(batch)
            first_run = (await h.batch(upload.batch_id).describe()).run_id
            counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        lengths = await _run_lengths(h.client, batch_workflow_id(upload.batch_id), first_run)
        chunk_ids = {row["workflow_id"] for row in items.values()}
        chunk_lengths = [
            len((await h.client.get_workflow_handle(wid).fetch_history()).events)
            for wid in sorted(chunk_ids)[:50]
        ]
    assert counts["succeeded"] == 3000
    assert len(items) == 3000
    assert {row["status"] for row in items.values()} == {"succeeded"}
    assert len(chunk_ids) == 300
    assert len(lengths) >= 4, lengths  # continued as new several times
    assert max(lengths) < 1000, lengths
    # A rate-limited chunk publishes one activity per item (three events each).
    assert max(chunk_lengths) < 150, chunk_lengths
    assert sorted(h.domain.delivered.values()) == [1] * 3000


async def test_window_bounds_chunks_in_flight(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with harness(
        time_skipping_env.client, tmp_path, chunk_size=5, max_in_flight=3, latency_ms=50
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(60))
            peak = 0
            while (await h.batch(upload.batch_id).describe()).status == 1:  # RUNNING
                progress = await h.progress(upload.batch_id)
                peak = max(peak, progress.in_flight_chunks)
                if progress.phase != "running":
                    break
            counts = await h.result(upload.batch_id)
    assert counts["succeeded"] == 60
    assert 1 <= peak <= 3


async def test_late_file_joins_the_running_batch(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    first, late = vins(40), vins(25, start=40)
    async with harness(
        time_skipping_env.client, tmp_path, chunk_size=10, idle_close_after_seconds=3
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(first)
            handle = h.batch(upload.batch_id)
            run_id = (await handle.describe()).run_id
            await h.until_progress(upload.batch_id, lambda p: p.phase == "idle")
            again = await h.submit(late, batch_id=upload.batch_id, command=None)
            assert again.accepted == 25
            progress = await h.until_progress(upload.batch_id, lambda p: p.chunks_done == 7)
            assert (await handle.describe()).run_id == run_id  # the same run took it
            counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
    assert progress.files == 2
    assert progress.items_total == 65
    assert counts["succeeded"] == 65
    assert {row["upload_id"] for row in items.values()} == {upload.upload_id, again.upload_id}


async def test_duplicate_and_invalid_rows_are_rejected_and_the_rest_runs(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    good = vins(5)
    rows = [good[0], "NOT-A-VIN", good[1], good[0], "1HGCM82643A004352", *good[2:]]
    async with harness(time_skipping_env.client, tmp_path) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(rows)
            counts = await h.result(upload.batch_id)
            again = await h.submit([good[3], vins(1, start=99)[0]], batch_id=upload.batch_id)
            await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
    assert (upload.accepted, upload.rejected) == (5, 3)
    assert [(r.line, r.reason) for r in upload.rejections] == [
        (3, "VIN must be 17 characters, got 9"),
        (5, "duplicate VIN, first seen on line 2"),
        (6, "VIN check digit is 4, expected 3"),
    ]
    assert counts["succeeded"] == 5
    assert (again.accepted, again.rejected) == (1, 1)
    assert again.rejections[0].reason == (
        f"duplicate VIN, first seen on line 8 of upload {upload.upload_id}"
    )
    assert len(items) == 6
    assert {row["status"] for row in items.values()} == {"succeeded"}


async def test_item_committed_below_the_cursor_still_runs(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """On PostgreSQL a file can commit after a later one, with smaller ids than the
    batch has already paged past. Simulated here by an item put in a freed low id."""
    first, late = vins(5), vins(1, start=50)[0]
    async with harness(time_skipping_env.client, tmp_path, idle_close_after_seconds=1) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            filler = await h.submit(vins(3, start=90))
            await h.result(filler.batch_id)
            async with h.store.engine.begin() as conn:
                await conn.execute(item_attempts.delete().where(item_attempts.c.item_id == 2))
                await conn.execute(items.delete().where(items.c.id == 2))
            upload = await h.submit(first)
            await h.until_progress(upload.batch_id, lambda p: p.chunks_done == 1)
            async with h.store.engine.begin() as conn:
                await conn.execute(
                    items.insert().values(
                        id=2,
                        batch_id=upload.batch_id,
                        upload_id=upload.upload_id,
                        line=99,
                        key=late,
                        effect_id=effect_id_for(upload.batch_id, late),
                        status="pending",
                        attempts=0,
                        updated_at=datetime.now(UTC),
                    )
                )
                # As an upload does, in the same transaction: the batch's counts.
                added = Changes()
                added.add(upload.batch_id, "pending", 1)
                await conn.run_sync(apply, added, datetime.now(UTC))
            counts = await h.result(upload.batch_id)
        rows = await h.items(upload.batch_id)
    assert counts["succeeded"] == 6
    assert rows[late]["status"] == "succeeded"


async def test_chunk_size_of_an_existing_batch_cannot_change(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with harness(time_skipping_env.client, tmp_path, chunk_size=10) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(3))
            with pytest.raises(BatchConflictError) as caught:
                await h.submit(vins(2, start=10), batch_id=upload.batch_id, chunk_size=50)
            await h.result(upload.batch_id)
        stored = await h.items(upload.batch_id)
    assert str(caught.value) == (
        f"batch {upload.batch_id!r} runs with chunk size 10; chunk size is set when a batch "
        "is created"
    )
    assert len(stored) == 3
