"""End-to-end: ``fleetbatch status`` on a paused batch (issue 14.7), every command a
real subprocess against the session's dev server, with a ``fleetbatch worker``
subprocess (in-process bus and simulators) on the test's own task queue and SQLite
store.

A paused batch moves on only when resumed, so ``status`` shows it as paused, with no
ETA, and returns; ``--follow`` follows it through the pause until it finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress
from temporalio.client import Client
from temporalio.service import RPCError

from cli_support import Cli, cli_env
from fleetbatch.cli import progress
from fleetbatch.cli.progress import line, render
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.services.progress import Snapshot
from fleetbatch.temporal import DevServer
from fleetbatch.workflows import BatchWorkflow
from fleetbatch.workflows.ids import batch_workflow_id

ITEMS = 20


@pytest.fixture
def cli(tmp_path: Path, dev_server: DevServer) -> Cli:
    return Cli(tmp_path, cli_env(tmp_path, dev_server.address))


@contextlib.asynccontextmanager
async def paused_batch(cli: Cli, client: Client) -> AsyncIterator[str]:
    """A batch of ``ITEMS`` VINs paused before any worker ran, and a worker: once the
    batch answers its progress query (the worker polls), it says it is paused."""
    batch = f"e2e-{uuid.uuid4().hex[:16]}"
    vins = cli.tmp / "vins.csv"
    vins.write_text("vin\n" + "".join(f"{make_vin(i)}\n" for i in range(ITEMS)))
    submitted = await cli.run("submit", str(vins), "--command", "lock_doors", "--batch", batch)
    assert submitted.code == 0, submitted
    paused = await cli.run("pause", batch)
    assert paused.code == 0, paused
    worker = await cli.start_logged("worker", log=cli.tmp / "worker.log")
    handle = client.get_workflow_handle(batch_workflow_id(batch))
    try:
        async with asyncio.timeout(60):
            while True:
                assert worker.returncode is None, (cli.tmp / "worker.log").read_text()
                with contextlib.suppress(RPCError):  # no worker has taken its task yet
                    if (await handle.query(BatchWorkflow.progress)).phase == "paused":
                        break
                await asyncio.sleep(0.2)
        yield batch
    finally:
        with contextlib.suppress(RPCError):  # finished already
            await handle.terminate("test over")
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 60)


async def test_status_of_a_paused_batch_says_so_and_returns(cli: Cli, dev_client: Client) -> None:
    async with paused_batch(cli, dev_client) as batch:
        started = time.monotonic()
        shown = await cli.run("status", batch, timeout=30)
        took = time.monotonic() - started
        once = await cli.run("status", batch, "--once", timeout=30)

    assert shown.code == 0, shown
    assert took < 20, shown  # a second or two: one snapshot, no following
    for result in (shown, once):
        assert re.search(r"^phase +paused *$", result.stdout, re.MULTILINE), result
        assert "ETA" not in result.stdout, result
        assert (
            f"batch {batch} is paused: 0 of {ITEMS} items done, no more chunks start; "
            f"`fleetbatch resume {batch}` goes on, "
            f"`fleetbatch status {batch} --follow` follows it through pauses"
        ) in result.stdout, result


@pytest.mark.slow
async def test_status_follow_keeps_following_a_paused_batch_until_it_ends(
    cli: Cli, dev_client: Client
) -> None:
    async with paused_batch(cli, dev_client) as batch:
        following = await cli.start("status", batch, "--follow")
        await asyncio.sleep(7)  # two of its polls, three seconds apart
        still = following.returncode
        resumed = await cli.run("resume", batch)
        assert resumed.code == 0, resumed
        shown = await cli.finish(following, timeout=120)
        final = await dev_client.get_workflow_handle(batch_workflow_id(batch)).result()

    assert still is None, shown  # it did not return while the batch was paused
    assert shown.code == 0, shown
    progress_lines = [s for s in shown.stdout.splitlines() if s.startswith("paused: ")]
    # At least one poll while paused (the CLI's start-up takes seconds on a busy machine).
    assert progress_lines, shown
    assert all(s.endswith("; waits for `resume`") for s in progress_lines), shown
    assert re.search(rf"^succeeded +{ITEMS} *$", shown.stdout, re.MULTILINE), shown
    assert re.search(r"^phase +completed *$", shown.stdout, re.MULTILINE), shown
    assert "is paused" not in shown.stdout, shown
    assert final["succeeded"] == ITEMS


def test_a_paused_snapshot_renders_without_an_eta() -> None:
    """The bar and table show no ETA while paused, even from an old snapshot that had
    one; the plain line says what the batch waits for."""

    paused = Snapshot("paused", 10, {"pending": 6, "succeeded": 4}, 2.0, 0.0, paused=True)
    running = Snapshot("running", 10, {"pending": 6, "succeeded": 4}, 2.0, 3.0)
    console = Console(file=io.StringIO(), width=80, color_system=None, record=True)
    bar = Progress(console=console)
    task = bar.add_task("items", total=1)
    console.print(render("b-1", paused, bar, task))
    console.print(render("b-1", running, bar, task))
    shown = console.export_text()
    assert shown.count("ETA") == 1 and re.search(r"^ETA +3s *$", shown, re.MULTILINE)
    assert line(paused) == "paused: 4/10 done (pending 6, succeeded 4); waits for `resume`"
    assert line(running) == "running: 4/10 done (pending 6, succeeded 4)"


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "pipe"])
async def test_watch_stops_at_a_pause_unless_it_follows_through_pauses(
    monkeypatch: pytest.MonkeyPatch, tty: bool
) -> None:
    """The same on a terminal (the live view) as in a pipe, on a scripted batch:
    paused, resumed, finished."""

    def at(phase: str, done: int) -> Snapshot:
        counts = {"pending": 10 - done, "succeeded": done}
        return Snapshot(phase, 10, counts, 1.0, None, paused=phase == "paused")

    script = [at("paused", 0), at("running", 5), at("completed", 10)]
    seen: list[str] = []

    async def scripted(*_: object) -> Snapshot:
        snap = script[min(len(seen), len(script) - 1)]
        seen.append(snap.phase)
        return snap

    out = io.StringIO()
    monkeypatch.setattr(progress, "snapshot", scripted)
    monkeypatch.setattr(progress, "console", Console(file=out, force_terminal=tty, width=100))

    stopped = await progress.watch(None, None, "b-1", tty=tty)  # type: ignore[arg-type]
    assert (stopped.phase, seen) == ("paused", ["paused"])
    assert "batch b-1 is paused: 0 of 10 items done" in out.getvalue()

    seen.clear()
    ended = await progress.watch(None, None, "b-1", through_pauses=True, tty=tty)  # type: ignore[arg-type]
    assert (ended.phase, seen) == ("completed", ["paused", "running", "completed"])
