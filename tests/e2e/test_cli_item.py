"""End-to-end: ``fleetbatch item BATCH KEY`` as a subprocess over a SQLite store that a
batch (run on the time-skipping server) left behind: the ``--json`` shape, the plain
output, and exit code 1 with the reason for an unknown batch or key."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from temporalio.testing import WorkflowEnvironment

from api_support import ATTEMPT_FIELDS, ITEM_FIELDS
from fleetbatch.bus import CommandMessage
from fleetbatch.pipelines.vehicle.simulators import Decision
from support import harness, vins


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


async def fleetbatch(tmp: Path, *args: str) -> Result:
    """Run a command on the test's store, stdout piped, no settings of the developer's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FLEETBATCH_") and k not in {"COLUMNS", "LINES", "FORCE_COLOR"}
    }
    env.update(
        FLEETBATCH_ENV_FILE=str(tmp / "absent.env"),
        FLEETBATCH_DATA_DIR=str(tmp / "data"),
        FLEETBATCH_DATABASE_URL=f"sqlite:///{tmp / 'fleetbatch.db'}",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetbatch.cli.main",
        *args,
        env=env,
        cwd=tmp,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


@pytest.fixture
async def finished(time_skipping_env: WorkflowEnvironment, tmp_path: Path) -> tuple[str, list[str]]:
    """A finished batch: its id, and VINs answered on the second attempt, rejected,
    and without consent."""
    late, rejected, denied = vins(3, 700)

    def decide(message: CommandMessage) -> Decision:
        if message.vin == late and message.attempt == 1:
            return Decision.DROP
        return Decision.FAIL if message.vin == rejected else Decision.SUCCEED

    async with harness(
        time_skipping_env.client,
        tmp_path,
        decide=decide,
        denied_vins=[denied],
        response_timeout_seconds=1,
        database_url=f"sqlite:///{tmp_path / 'fleetbatch.db'}",
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit([late, rejected, denied], batch_id="b-cli-item")
            await h.result(upload.batch_id)
    return upload.batch_id, [late, rejected, denied]


async def test_item_json_has_the_documented_shape(
    finished: tuple[str, list[str]], tmp_path: Path
) -> None:
    batch_id, (late, rejected, denied) = finished
    result = await fleetbatch(tmp_path, "item", batch_id, late.lower(), "--json")
    assert (result.code, result.stderr) == (0, "")
    body = json.loads(result.stdout)
    assert set(body) == ITEM_FIELDS
    assert (body["batch_id"], body["key"], body["line"]) == (batch_id, late, 2)
    assert (body["status"], body["outcome"], body["error"], body["result"]) == (
        "succeeded",
        "succeeded",
        None,
        None,
    )
    workflow = body["workflow_id"]
    assert workflow.startswith(f"fleetbatch-{batch_id}-")
    # Embedded Temporal: the dev server's UI, in the default namespace.
    assert body["temporal_url"] == (
        f"http://127.0.0.1:8233/namespaces/default/workflows/{quote(workflow, safe='')}"
    )
    attempts = body["attempts"]
    assert all(set(a) == ATTEMPT_FIELDS for a in attempts)
    assert [(a["attempt"], a["effect_id"], a["outcome"]) for a in attempts] == [
        (1, body["effect_id"], "timed out after 1s"),
        (2, body["effect_id"], "succeeded"),
    ]
    assert attempts[0]["answered_at"] is None
    assert all(a["published_at"].endswith("Z") for a in attempts)
    assert attempts[1]["answered_at"].endswith("Z")

    failed = json.loads((await fleetbatch(tmp_path, "item", batch_id, rejected, "--json")).stdout)
    reason = "domain rejected the command: vehicle unreachable"
    assert (failed["status"], failed["outcome"]) == ("failed", f"failed: {reason}")
    assert [a["outcome"] for a in failed["attempts"]] == [f"failed: {reason}"]
    skipped = json.loads((await fleetbatch(tmp_path, "item", batch_id, denied, "--json")).stdout)
    assert (skipped["outcome"], skipped["attempts"]) == ("skipped: owner has not consented", [])


async def test_item_prints_its_attempts(finished: tuple[str, list[str]], tmp_path: Path) -> None:
    batch_id, (late, _, _) = finished
    result = await fleetbatch(tmp_path, "item", batch_id, late)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"batch {batch_id} · VIN {late} · line 2"
    assert "status:         succeeded" in lines
    assert any(
        line.startswith("in Temporal:    http://127.0.0.1:8233/namespaces/") for line in lines
    )
    # Piped: the attempts as a header and one tab-separated line each.
    header = lines.index("attempt\teffect id\tpublished (UTC)\tanswered (UTC)\toutcome")
    first, second = (line.split("\t") for line in lines[header + 1 :])
    assert (first[0], first[3], first[4]) == ("1", "-", "timed out after 1s")
    assert (second[0], second[4]) == ("2", "succeeded")
    assert second[2] <= second[3]  # published, then answered


async def test_unknown_batch_or_key_exits_1(
    finished: tuple[str, list[str]], tmp_path: Path
) -> None:
    batch_id, _ = finished
    missing = vins(1, 800)[0]
    for args, message in (
        (("nope", missing), "error: no batch 'nope'"),
        ((batch_id, missing.lower()), f"error: batch {batch_id!r} has no item {missing!r}"),
    ):
        result = await fleetbatch(tmp_path, "item", *args, "--json")
        assert (result.code, result.stdout, result.stderr.strip()) == (1, "", message), args
