"""``fleetbatch api`` and ``fleetbatch dev`` as real processes, and the upload benchmark."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

from external import free_port
from fleetbatch_bench.upload import run_upload_bench

pytestmark = pytest.mark.integration

CLI = (sys.executable, "-m", "fleetbatch.cli.main")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETBATCH_")}
    env |= {
        "FLEETBATCH_ENV_FILE": str(tmp_path / "none.env"),
        "FLEETBATCH_DATA_DIR": str(tmp_path / "data"),
        "FLEETBATCH_METRICS_ADDRESS": "",
        **extra,
    }
    return env


async def test_api_refuses_to_start_in_production_without_tokens(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        *CLI,
        "api",
        env=_env(tmp_path, FLEETBATCH_ENVIRONMENT="production"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert stderr.decode().replace("\n", "") == (
        "error: no API tokens configured in production: set FLEETBATCH_API_OPERATOR_TOKENS "
        "(and FLEETBATCH_API_VIEWER_TOKENS), or FLEETBATCH_ENVIRONMENT=development for "
        "open access on this machine"
    )


async def test_dev_serves_the_ui_and_prints_its_url(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        FLEETBATCH_DEV_SERVER_PORT=str(free_port()),
        FLEETBATCH_DEV_SERVER_UI_PORT=str(free_port()),
        FLEETBATCH_DEV_SERVER_PERSIST="false",
        FLEETBATCH_API_PORT=str(free_port()),
    )
    process = await asyncio.create_subprocess_exec(
        *CLI, "dev", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert process.stdout is not None
    try:
        url = None
        async with asyncio.timeout(90):
            while url is None:
                line = (await process.stdout.readline()).decode()
                assert line, "fleetbatch dev ended before printing the web UI's URL"
                found = re.search(r"fleetbatch web UI and API: (http://\S+)", line)
                url = found.group(1) if found else None
        async with httpx.AsyncClient(base_url=url) as http:
            ready = await http.get("/readyz")
            page = await http.get("/")
        assert ready.status_code == 200, ready.text
        assert page.status_code == 200 and "<h1>Batches</h1>" in page.text
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 60)
    assert process.returncode == 0


async def test_upload_bench_measures_a_file_through_the_api(tmp_path: Path) -> None:
    result = await run_upload_bench(3000, tmp_path)
    assert (result.rows, result.accepted) == (3000, 3000)
    assert result.file_bytes == 4 + 3000 * 18
    assert result.seconds > 0
    assert result.api_peak_rss_bytes is not None and result.api_rss_before_bytes is not None
    assert result.api_peak_rss_bytes >= result.api_rss_before_bytes
    assert json.loads(result.to_json())["database"] == "sqlite"
