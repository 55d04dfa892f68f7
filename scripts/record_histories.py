"""Record workflow histories for the replay tests.

Run for each release, with the release as the tag:
``.venv/bin/python scripts/record_histories.py 0.2.0``.
On the embedded dev server it runs, for the vehicle pipeline, a small batch
through the rate-limited publish queue and one publishing in the chunk (each
with a re-publish after a 30 s timeout, a consent skip, a domain failure and
continue-as-new), a per-VIN batch that records through a write batcher
(flushes by size, continue-as-new), and for the enrichment pipeline a batch
against a simulator that fails a share of calls, a batch in two waves whose
second is approved by an update, with webhook notices, and a batch that waits for
its maintenance window, then ramps its own rate under an overshoot bound; it writes
every run's history as JSON into tests/workflows/histories/. Older releases' files stay: running
histories must keep replaying.
"""

from __future__ import annotations

import asyncio
import http.server
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402

from external import free_port  # noqa: E402
from fleetbatch.activities.batcher_types import batcher_workflow_id  # noqa: E402
from fleetbatch.bus import CommandMessage  # noqa: E402
from fleetbatch.config import CommandSettings  # noqa: E402
from fleetbatch.domain.rollout import parse_waves, rollout_from_options  # noqa: E402
from fleetbatch.pipelines.enrich.service import EnrichmentSimulatorConfig  # noqa: E402
from fleetbatch.pipelines.vehicle.simulators import Decision  # noqa: E402
from fleetbatch.services import control  # noqa: E402
from fleetbatch.temporal import DevServer, ensure_search_attributes  # noqa: E402
from fleetbatch.workflows.ids import batch_workflow_id  # noqa: E402
from support import harness, vins  # noqa: E402

OUT = ROOT / "tests" / "workflows" / "histories"


async def main(tag: str) -> None:
    server = DevServer(port=free_port(), ui_port=free_port(), db_file=None)
    await server.start()
    client = await Client.connect(server.address)
    await ensure_search_attributes(client)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for queue, rate in (("queue", None), ("inchunk", "off")):
                await _vehicle(client, Path(tmp) / queue, f"{tag}-{queue}", rate)
            await _batched(client, Path(tmp) / "batched", tag)
            await _enrich(client, Path(tmp) / "enrich", tag)
            await _waves(client, Path(tmp) / "waves", tag)
            await _scheduled(client, Path(tmp) / "scheduled", tag)
    finally:
        server.stop()


async def _vehicle(client: Client, tmp: Path, tag: str, rate: str | None) -> None:
    batch = vins(120)
    slow, failing, denied = batch[0], batch[1], batch[2]

    def decide(message: CommandMessage) -> Decision:
        if message.vin == slow and message.attempt == 1:
            return Decision.DROP
        return Decision.FAIL if message.vin == failing else Decision.SUCCEED

    async with harness(
        client,
        tmp,
        decide=decide,
        denied_vins=[denied],
        chunk_size=5,
        max_in_flight=4,
        max_history_events=100,
        commands={"lock_doors": CommandSettings(rate=rate)} if rate else {},
    ) as h:
        upload = await h.submit(batch, batch_id=f"replay-{tag}")
        await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        await _save(client, batch_workflow_id(upload.batch_id), f"batch-{tag}")
        await _save(client, items[slow]["workflow_id"], f"vehicle-{tag}")


async def _batched(client: Client, tmp: Path, tag: str) -> None:
    async with harness(
        client,
        tmp,
        chunk_size=1,
        max_in_flight=10,
        write_shards=1,
        write_max_batch=4,
        write_max_wait_seconds=0.5,
        write_requests_per_run=10,
    ) as h:
        upload = await h.submit(vins(20, 1000), batch_id=f"replay-{tag}-batched")
        await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        await _save(client, items[vins(1, 1000)[0]]["workflow_id"], f"vehicle-{tag}-batched")
        await _save(
            client, batcher_workflow_id(h.settings.temporal_task_queue, 0), f"batcher-{tag}"
        )


async def _enrich(client: Client, tmp: Path, tag: str) -> None:
    users = "user_id,email,country\n" + "".join(f"u{i},u{i}@example.com,DE\n" for i in range(30))
    async with harness(
        client,
        tmp,
        chunk_size=10,
        max_in_flight=2,
        enrich_retry_initial_seconds=0.01,
        enrichment=EnrichmentSimulatorConfig(
            latency_ms=0, latency_jitter_ms=0, failure_rate=0.3, seed=3
        ),
    ) as h:
        upload = await h.submit(
            users.encode(),
            pipeline="enrich",
            options={},
            filename="users.csv",
            batch_id=f"replay-{tag}-enrich",
        )
        await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        await _save(client, batch_workflow_id(upload.batch_id), f"batch-{tag}-enrich")
        await _save(client, items["u0"]["workflow_id"], f"enrich-{tag}")


async def _waves(client: Client, tmp: Path, tag: str) -> None:
    """A batch in two waves, the second approved by an update, with a webhook whose
    notices (the approval wait, the end) go to a receiver that answers 204."""
    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), _Accept)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rollout = parse_waves("10,all")
    rollout.gate_failures, rollout.gate_min_items = "50%", 5
    rollout.approve, rollout.webhook_url = True, f"http://127.0.0.1:{port}/hook"
    try:
        async with harness(
            client,
            tmp,
            chunk_size=5,
            max_in_flight=2,
            webhook_secret="replay-webhook-secret",
            commands={"lock_doors": CommandSettings(rate="off")},
        ) as h:
            upload = await h.submit(vins(30, 2000), batch_id=f"replay-{tag}-waves", rollout=rollout)
            await h.until_progress(upload.batch_id, lambda p: p.awaiting_approval == 2)
            await control.approve_wave(h.client, h.store, upload.batch_id, 2)
            await h.result(upload.batch_id)
            workflow_id = batch_workflow_id(upload.batch_id)
            notice = f"{workflow_id}-notice-1"
            await client.get_workflow_handle(notice).result()
        await _save(client, workflow_id, f"batch-{tag}-waves")
        await _save(client, notice, f"notice-{tag}")
    finally:
        server.shutdown()


async def _scheduled(client: Client, tmp: Path, tag: str) -> None:
    """A batch on the rate-limited queue whose maintenance window opens at the next
    minute (a durable timer until then), with a ramping rate of its own and an
    overshoot bound on its tolerated failures."""
    opens = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    window = f"{opens:%H:%M}-{opens + timedelta(minutes=30):%H:%M} UTC"
    rollout = rollout_from_options(
        None,
        windows=[window],
        ramp="base=300/min,factor=2,after=10,max=1200/min",
        overshoot=5,
        max_failures="50%",
    )
    async with harness(client, tmp, chunk_size=5, max_in_flight=4) as h:
        upload = await h.submit(
            vins(40, 3000),
            batch_id=f"replay-{tag}-scheduled",
            rollout=rollout,
            max_failures="50%",
        )
        await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        await _save(client, batch_workflow_id(upload.batch_id), f"batch-{tag}-scheduled")
        first = min(items.values(), key=lambda item: item["id"])
        await _save(client, first["workflow_id"], f"vehicle-{tag}-scheduled")


class _Accept(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


async def _save(client: Client, workflow_id: str, name: str) -> None:
    """Every run of ``workflow_id`` (following continue-as-new) as one file each."""
    latest = await client.get_workflow_handle(workflow_id).fetch_history()
    first_run = latest.events[0].workflow_execution_started_event_attributes.first_execution_run_id
    history = await client.get_workflow_handle(workflow_id, run_id=first_run).fetch_history()
    chain = [history]
    while history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        attrs = history.events[-1].workflow_execution_continued_as_new_event_attributes
        history = await client.get_workflow_handle(
            workflow_id, run_id=attrs.new_execution_run_id
        ).fetch_history()
        chain.append(history)
    for index, run in enumerate(chain):
        path = OUT / f"{name}-run{index}.json"
        path.write_text(run.to_json())
        print(f"wrote {path.relative_to(ROOT)} ({len(run.events)} events)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: record_histories.py RELEASE (for example 0.2.0)")
    asyncio.run(main(sys.argv[1]))
