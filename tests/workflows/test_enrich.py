"""The enrichment pipeline on the dev server: a flaky service, fallback records,
result files per chunk, and a chunk's activity resuming from its heartbeat."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client

from fleetbatch.pipelines.enrich.client import EnrichmentClient, EnrichResult, UserRecord
from fleetbatch.pipelines.enrich.output import chunk_file_name, output_dir
from fleetbatch.pipelines.enrich.service import EnrichmentSimulatorConfig
from fleetbatch.pipelines.enrich.workflow import EnrichChunkWorkflow
from support import Harness, harness


def users_csv(n: int, start: int = 0) -> bytes:
    rows = "".join(f"u{i:04d},u{i}@example.com,DE\n" for i in range(start, start + n))
    return ("user_id,email,country\n" + rows).encode()


async def submit_users(h: Harness, n: int, **kwargs: Any) -> Any:
    kwargs.setdefault("options", {})
    return await h.submit(users_csv(n), pipeline="enrich", filename="users.csv", **kwargs)


async def test_every_user_ends_enriched_or_with_a_counted_fallback(
    dev_client: Client, tmp_path: Path
) -> None:
    config = EnrichmentSimulatorConfig(latency_ms=0, latency_jitter_ms=0, failure_rate=0.4, seed=5)
    async with harness(
        dev_client, tmp_path, chunk_size=20, enrichment=config, enrich_retry_initial_seconds=0.01
    ) as h:
        upload = await submit_users(h, 60)
        counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        sources = await h.store.items.result_sources(upload.batch_id)
        assert h.enrichment is not None
        calls = h.enrichment.calls
    failed = {k: r for k, r in items.items() if r["status"] == "failed"}
    assert counts["succeeded"] + counts["failed"] == 60
    assert counts["failed"] == len(failed) > 0  # 0.4³ of 60 users: about 4
    assert sources == {"fallback": counts["failed"], "service": counts["succeeded"]}
    for row in failed.values():
        assert row["error"] == "fallback record: enrichment service answered 503 after 3 attempts"
        assert row["result"]["enriched"] is False
        assert row["result"]["region"] == "UNKNOWN"
        assert row["result"]["source"] == "fallback"
        assert calls[row["key"]] == 3
    for row in items.values():
        if row["status"] == "succeeded":
            assert row["result"]["enriched"] is True
            assert row["result"]["region"] == "EU"
            assert row["result"]["source"] == "service"
    # One file per chunk, named by the batch and the chunk's item range.
    ids = sorted(r["id"] for r in items.values())
    directory = output_dir(tmp_path, upload.batch_id)
    expected = [
        chunk_file_name(upload.batch_id, ids[i], ids[i + 19], "jsonl") for i in range(0, 60, 20)
    ]
    assert sorted(p.name for p in directory.iterdir()) == expected
    lines = [
        json.loads(line)
        for name in expected
        for line in (directory / name).read_text().splitlines()
    ]
    assert sorted(line["user_id"] for line in lines) == sorted(items)
    assert sum(1 for line in lines if line["source"] == "fallback") == counts["failed"]


class StallingClient(EnrichmentClient):
    """The real client, except that the first attempt of a chunk's activity stalls
    (stops heartbeating) when it reaches user ``stall_at`` of the chunk."""

    def __init__(self, base_url: str, stall_at: int) -> None:
        super().__init__(base_url)
        self.stall_at = stall_at
        self.calls: list[tuple[int, str]] = []
        """(activity attempt, user id) per call."""

    async def enrich(self, user: UserRecord) -> EnrichResult:
        attempt = activity.info().attempt
        if attempt == 1 and sum(1 for a, _ in self.calls if a == 1) == self.stall_at:
            await asyncio.Event().wait()  # the heartbeat timeout ends this attempt
        self.calls.append((attempt, user.user_id))
        return await super().enrich(user)


async def test_a_timed_out_chunk_resumes_from_its_heartbeat_details(
    dev_client: Client, tmp_path: Path
) -> None:
    config = EnrichmentSimulatorConfig(latency_ms=0, latency_jitter_ms=0, failure_rate=0.0)
    async with harness(
        dev_client,
        tmp_path,
        chunk_size=10,
        enrichment=config,
        enrich_heartbeat_timeout_seconds=2.0,
        enrich_client=lambda url: StallingClient(url, stall_at=6),
    ) as h:
        assert h.enrichment is not None
        assert isinstance(h.enrich_client, StallingClient)
        stalling = h.enrich_client
        upload = await submit_users(h, 10)
        counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        chunk = h.client.get_workflow_handle_for(
            EnrichChunkWorkflow.run, items["u0000"]["workflow_id"]
        )
        history = await chunk.fetch_history()
    assert counts["succeeded"] == 10
    first = [user for attempt, user in stalling.calls if attempt == 1]
    second = [user for attempt, user in stalling.calls if attempt == 2]
    assert first == [f"u{i:04d}" for i in range(6)]
    assert second == [f"u{i:04d}" for i in range(6, 10)]  # no user enriched twice
    assert sorted(h.enrichment.calls.values()) == [1] * 10
    completed = [
        e.activity_task_completed_event_attributes
        for e in history.events
        if e.HasField("activity_task_completed_event_attributes")
    ]
    [result] = [json.loads(c.result.payloads[0].data) for c in completed]
    assert result["resumed_from"] == 6
    started = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert [s.attempt for s in started] == [2]  # the first attempt timed out
