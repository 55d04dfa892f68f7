"""Webhook notices, signed, against a real HTTP receiver: the approval wait, a
failed gate, the breaker opening and closing, the batch's end, with waves or
without; a receiver that is down delays nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from fleetbatch.activities.notify import SIGNATURE_HEADER
from fleetbatch.config import CommandSettings
from fleetbatch.domain.rollout import parse_waves, rollout_from_options
from fleetbatch.pipelines.vehicle.simulators import Decision
from fleetbatch.services import control
from support import FailsUntilHealthy, breaker_harness, harness, vins

SECRET = "webhook-secret-5b2e"
_FAST = {"commands": {"lock_doors": CommandSettings(rate="off")}, "webhook_secret": SECRET}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def receiver(port: int, got: list[dict[str, Any]]) -> Iterator[None]:
    """An HTTP server on ``port`` that keeps every POST whose signature checks."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            signed = hmac.compare_digest(self.headers[SIGNATURE_HEADER], expected)
            got.append({"signed": signed, **json.loads(body)})
            self.send_response(204 if signed else 401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


async def test_a_receiver_that_is_down_delays_nothing_and_gets_the_notices_later(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port, got = _free_port(), []
    rollout = parse_waves("25%,all")
    rollout.approve, rollout.webhook_url = True, f"http://127.0.0.1:{port}/hook"
    async with harness(time_skipping_env.client, tmp_path, chunk_size=5, **_FAST) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(40), rollout=rollout)
            # The receiver is down: the batch still reaches the approval wait.
            await h.until_progress(upload.batch_id, lambda p: p.awaiting_approval == 2)
            with receiver(port, got):
                await control.approve_wave(h.client, h.store, upload.batch_id, 2)
                counts = await h.result(upload.batch_id)
                await h.until(lambda: len(got) >= 2, timeout=60)
    assert counts["succeeded"] == 40
    by_event = {notice["event"]: notice for notice in got}
    assert set(by_event) == {"wave_waiting", "finished"}
    assert all(notice["signed"] for notice in got)
    assert by_event["wave_waiting"] == {
        "signed": True,
        "batch_id": upload.batch_id,
        "event": "wave_waiting",
        "wave": 2,
    }
    assert by_event["finished"]["status"] == "completed"
    assert by_event["finished"]["counts"]["succeeded"] == 40


async def test_a_failed_gate_and_the_abort_are_notified(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port, got = _free_port(), []
    rollout = parse_waves("50%,all")
    rollout.gate_failures, rollout.on_gate_failure = "5%", "abort"
    rollout.webhook_url = f"http://127.0.0.1:{port}/hook"
    async with harness(
        time_skipping_env.client,
        tmp_path,
        decide=lambda message: Decision.FAIL,
        chunk_size=10,
        breaker_min_calls=1_000_000,
        **_FAST,
    ) as h:
        with receiver(port, got), time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(40), rollout=rollout)
            counts = await h.result(upload.batch_id)
            await h.until(lambda: len(got) >= 2, timeout=30)
    by_event = {notice["event"]: notice for notice in got}
    assert set(by_event) == {"gate_failed", "finished"}
    assert by_event["gate_failed"]["action"] == "abort"
    # The gate judges what has reported when it looks: the first chunk, or both of the
    # wave's chunks when their reports reach the batch in one workflow task.
    assert re.match(
        r"wave 1 of 2: (10 of 10|20 of 20) items failed", by_event["gate_failed"]["reason"]
    )
    assert by_event["finished"]["status"] == "aborted"
    assert counts["failed"] <= 20 and counts["cancelled"] >= 20


async def test_a_batch_without_waves_gets_its_finished_notice(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port, got = _free_port(), []
    # As `submit --webhook URL` asks for it: a rollout that holds only the webhook.
    rollout = rollout_from_options(None, webhook_url=f"http://127.0.0.1:{port}/hook")
    assert rollout is not None and not rollout.staged
    async with harness(time_skipping_env.client, tmp_path, chunk_size=5, **_FAST) as h:
        with receiver(port, got), time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(12), rollout=rollout)
            counts = await h.result(upload.batch_id)
            await h.until(lambda: len(got) >= 1, timeout=30)
            await asyncio.sleep(0.3)  # nothing more comes
    assert counts["succeeded"] == 12
    assert got == [
        {
            "signed": True,
            "batch_id": upload.batch_id,
            "event": "finished",
            "status": "completed",
            "counts": counts,
        }
    ]


async def test_the_breaker_opening_and_closing_are_notified_once(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    port, got = _free_port(), []
    domain = FailsUntilHealthy()
    rollout = rollout_from_options(None, webhook_url=f"http://127.0.0.1:{port}/hook")
    async with breaker_harness(
        time_skipping_env.client,
        tmp_path,
        domain,
        latency_ms=50,
        max_in_flight=1,
        cooldown_seconds=2.0,
        **_FAST,
    ) as h:
        with receiver(port, got), time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(40), rollout=rollout)
            opened_at = None
            while opened_at is None:  # the second chunk's 10 failures open it
                opened_at = (await h.store.breakers.get("lock_doors")).opened_at
                await asyncio.sleep(0.02)
            domain.healthy = True  # the probe, after the cool-down, closes it
            counts = await h.result(upload.batch_id)
            await h.until(lambda: len(got) >= 3, timeout=30)
            await asyncio.sleep(0.3)  # nothing more comes
    assert (counts["failed"], counts["succeeded"]) == (10, 30)
    assert sorted(notice["event"] for notice in got) == [
        "breaker_closed",
        "breaker_opened",
        "finished",
    ]
    assert all(notice["signed"] for notice in got)
    by_event = {notice["event"]: notice for notice in got}
    assert by_event["breaker_opened"] == {
        "signed": True,
        "batch_id": upload.batch_id,
        "event": "breaker_opened",
        "breaker": "lock_doors",
        "opened_at": pytest.approx(opened_at.timestamp(), abs=1e-3),
    }
    assert by_event["breaker_closed"]["breaker"] == "lock_doors"
    assert by_event["finished"]["status"] == "completed"
