"""Schemathesis over the served spec, with its default checks: every answer is one the
spec describes (status, content type, schema, headers), bad input is refused, no
route fails, and a route that needs a token refuses a request without one.

Bounded in time: a handful of examples per operation, one worker, a fixed seed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from api_support import OPERATOR, ApiFactory, api_vins
from fleetbatch.api import create_app
from fleetbatch.api.server import running_api

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 10


@pytest.mark.slow
async def test_schemathesis_finds_nothing(api_factory: ApiFactory, tmp_path: Path) -> None:
    async with api_factory() as api:
        await api.h.submit(api_vins(3), batch_id="b-st")  # the config's batch_id
        await api.h.result("b-st")
        app = create_app(api.h.settings, store=api.h.store, client=api.h.client)
        async with running_api(app, "127.0.0.1", 0) as url:
            process = await asyncio.create_subprocess_exec(
                str(SCHEMATHESIS),
                "--config-file",
                str(CONFIG),
                "run",
                f"{url}/openapi.json",
                "--header",
                f"Authorization: Bearer {OPERATOR}",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                "16",
                "--workers",
                "1",
                "--request-timeout",
                "20",
                "--no-color",
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            async with asyncio.timeout(240):
                out, _ = await process.communicate()
    report = out.decode()
    assert process.returncode == 0, report
