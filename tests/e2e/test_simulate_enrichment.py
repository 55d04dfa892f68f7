"""`fleetbatch simulate enrichment`: the enrichment service's simulator as an HTTP
server of its own, configured by the FLEETBATCH_ENRICH_SIM_* settings."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from external import free_port


async def test_the_simulator_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "calls.ndjson"
    env = {
        **os.environ,
        "FLEETBATCH_ENRICH_SIM_FAILURE_RATE": "1.0",
        "FLEETBATCH_DATA_DIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetbatch.cli.main",
            "simulate",
            "enrichment",
            "--port",
            str(port),
            "--log-file",
            str(log),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            async with asyncio.timeout(30):
                while True:
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
            failed = await client.post(
                "/enrich", json={"user_id": "u1", "email": "u1@example.com", "country": "DE"}
            )
            stats = (await client.get("/stats")).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert failed.status_code == 503  # FLEETBATCH_ENRICH_SIM_FAILURE_RATE=1.0
    assert stats["calls"] == {"u1": 1}
    assert proc.returncode == 0, output
    text = output.decode()
    assert f"enrichment simulator at {url}" in text
    assert "enrichment simulator stopped cleanly" in text
    assert '"user_id": "u1"' in log.read_text() or '"user_id":"u1"' in log.read_text()
