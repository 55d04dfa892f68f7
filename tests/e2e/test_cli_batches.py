"""End-to-end: what ``fleetbatch list``, ``status``, ``report`` and ``configure`` print
for scripts (``--json``) and pipes, and what ``status`` exits with, on three batches
run by a ``fleetbatch worker`` subprocess whose domain simulator fails half the
commands:

- ``completed``: 20 VINs, ``honk_horn``, failures tolerated;
- ``aborted``: 20 VINs, ``flash_lights``, ``--max-failures 1``, chunks of 2 one at a time;
- ``paused``: 20 VINs, ``lock_doors``, paused before the worker ran; the last test
  cancels it.

Every command is the real script as a subprocess, its stdout a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from cli_support import Cli, Result, cli_env
from fleetbatch.cli.listing import HEADERS
from fleetbatch.domain import ItemStatus
from fleetbatch.pipelines.vehicle.commands import COMMANDS
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.services.reports import ITEM_FIELDS
from fleetbatch.temporal import DevServer
from fleetbatch.workflows import BatchWorkflow
from fleetbatch.workflows.ids import batch_workflow_id

ITEMS = 20
LIST_FIELDS = {
    "id": str,
    "pipeline": str,
    "label": str,
    "status": str,
    "total": int,
    "done": int,
    "percent": float,
    "counts": dict,
    "items_per_second": float,
    "stop_reason": (str, type(None)),
    "created_at": str,
    "finished_at": (str, type(None)),
    "duration_seconds": float,
}
PROGRESS_FIELDS = {
    "batch_id": str,
    "phase": str,
    "paused": bool,
    "finished": bool,
    "total": int,
    "done": int,
    "percent": float,
    "counts": dict,
    "items_per_second": float,
    "eta_seconds": (float, type(None)),
    "eta": str,
    "breaker": (str, type(None)),
    "stop_reason": (str, type(None)),
    "updated_at": (str, type(None)),
}


@dataclass
class Batches:
    cli: Cli
    completed: str
    aborted: str
    paused: str


def _assert_shape(value: dict[str, Any], fields: dict[str, Any]) -> None:
    assert set(value) >= set(fields), value  # more fields may come; these stay
    for name, kind in fields.items():
        assert isinstance(value[name], kind), (name, value[name])


def _json(result: Result) -> Any:
    assert result.stderr == "", result
    [line] = result.stdout.splitlines()  # one object, one line
    return json.loads(line)


async def _submit(cli: Cli, batch: str, command: str, *options: str) -> None:
    vins = cli.tmp / f"{batch}.csv"
    vins.write_text("vin\n" + "".join(f"{make_vin(i)}\n" for i in range(ITEMS)))
    submitted = await cli.run("submit", str(vins), "--command", command, "--batch", batch, *options)
    assert submitted.code == 0, submitted


@pytest.fixture(scope="module")
async def batches(
    tmp_path_factory: pytest.TempPathFactory, dev_server: DevServer, dev_client: Client
) -> AsyncIterator[Batches]:
    tmp = tmp_path_factory.mktemp("cli-batches")
    cli = Cli(tmp, cli_env(tmp, dev_server.address, FLEETBATCH_SIM_FAILURE_RATE="0.5"))
    tag = uuid.uuid4().hex[:8]
    made = Batches(cli, f"done-{tag}", f"abort-{tag}", f"pause-{tag}")
    # Oldest first: the list shows them newest first.
    await _submit(cli, made.completed, "honk_horn")
    # One chunk at a time: the abort comes before every item has settled (with every
    # chunk in flight at once, all of them may settle first, and the batch completes).
    await _submit(
        cli,
        made.aborted,
        "flash_lights",
        "--max-failures",
        "1",
        "--chunk-size",
        "2",
        "--max-in-flight",
        "1",
    )
    await _submit(cli, made.paused, "lock_doors")
    paused = await cli.run("pause", made.paused)
    assert paused.code == 0, paused
    worker = await cli.start_logged("worker", log=tmp / "worker.log")
    try:
        async with asyncio.timeout(120):
            for batch in (made.completed, made.aborted):
                await dev_client.get_workflow_handle(batch_workflow_id(batch)).result()
            handle = dev_client.get_workflow_handle(batch_workflow_id(made.paused))
            while True:
                assert worker.returncode is None, (tmp / "worker.log").read_text()
                with contextlib.suppress(RPCError):  # no worker has taken its task yet
                    if (await handle.query(BatchWorkflow.progress)).phase == "paused":
                        break
                await asyncio.sleep(0.2)
        yield made
    finally:
        with contextlib.suppress(RPCError):  # cancelled and finished already
            await dev_client.get_workflow_handle(batch_workflow_id(made.paused)).terminate("over")
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 60)


async def test_list_json_shows_every_batch_newest_first_with_its_status(
    batches: Batches,
) -> None:
    started = datetime.now(UTC)
    listed = _json(await batches.cli.run("list", "--json"))

    assert set(listed) == {"batches", "total"}
    assert listed["total"] == 3
    rows = listed["batches"]
    ids = [b["id"] for b in rows]
    assert ids == [batches.paused, batches.aborted, batches.completed]
    by_id = {b["id"]: b for b in rows}
    for row in rows:
        _assert_shape(row, LIST_FIELDS)
        assert row["pipeline"] == "vehicle"
        assert row["total"] == ITEMS
        assert set(row["counts"]) == {s.value for s in ItemStatus}
        assert sum(row["counts"].values()) == ITEMS
        created = datetime.fromisoformat(row["created_at"])
        assert created.utcoffset() == timedelta(0)  # a time zone, always
        assert started - timedelta(minutes=5) < created <= started
        assert row["duration_seconds"] >= 0
    done, aborted, paused = by_id[batches.completed], by_id[batches.aborted], by_id[batches.paused]
    assert (done["label"], done["status"], done["done"], done["percent"]) == (
        "honk_horn",
        "completed",
        ITEMS,
        100.0,
    )
    assert done["counts"]["failed"] > 0 and done["finished_at"] is not None
    assert (aborted["label"], aborted["status"]) == ("flash_lights", "aborted")
    # Every chunk of 2 may be in flight when the second failure comes in: more can fail.
    stopped = re.fullmatch(r"(\d+) items failed, more than the tolerated 1", aborted["stop_reason"])
    assert stopped is not None and 2 <= int(stopped[1]) <= ITEMS, aborted["stop_reason"]
    assert aborted["finished_at"] is not None
    assert (paused["label"], paused["status"], paused["done"]) == ("lock_doors", "paused", 0)
    assert (paused["counts"]["pending"], paused["finished_at"]) == (ITEMS, None)


@pytest.mark.parametrize(
    ("filters", "expected", "total"),
    [
        (("--status", "paused"), ["paused"], 1),
        (("--status", "running"), [], 0),  # the running one is paused
        (("--status", "completed"), ["completed"], 1),
        (("--status", "aborted"), ["aborted"], 1),
        (("--command", "flash_lights"), ["aborted"], 1),
        (("--pipeline", "vehicle", "--limit", "2"), ["paused", "aborted"], 3),
        (("--pipeline", "enrich"), [], 0),
        (("--command", "lock_doors", "--status", "completed"), [], 0),
    ],
)
async def test_list_json_filters(
    batches: Batches, filters: tuple[str, ...], expected: list[str], total: int
) -> None:
    listed = _json(await batches.cli.run("list", "--json", *filters))

    assert [b["id"] for b in listed["batches"]] == [getattr(batches, e) for e in expected]
    assert listed["total"] == total


async def test_list_off_a_terminal_is_a_tab_separated_table(batches: Batches) -> None:
    shown = await batches.cli.run("list", "--status", "completed")

    assert shown.code == 0, shown
    header, row, count = shown.stdout.splitlines()
    assert header.split("\t") == list(HEADERS)
    batch, what, status, progress, counts, rate, duration, created = row.split("\t")
    assert (batch, what, status, progress) == (
        batches.completed,
        "honk_horn",
        "completed",
        "100.0% of 20",
    )
    assert re.fullmatch(r"succeeded \d+, failed \d+", counts), counts
    assert re.fullmatch(r"\d+\.\d/s", rate), rate
    assert re.fullmatch(r"\d+s|\d+m \d\ds", duration), duration
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", created), created
    assert count == "1 of 1 batches"


async def test_status_json_is_one_snapshot(batches: Batches) -> None:
    result = await batches.cli.run("status", batches.paused, "--json")

    assert result.code == 0, result
    snap = _json(result)
    _assert_shape(snap, PROGRESS_FIELDS)
    assert snap["batch_id"] == batches.paused
    assert (snap["phase"], snap["paused"], snap["finished"]) == ("paused", True, False)
    assert (snap["total"], snap["done"], snap["percent"]) == (ITEMS, 0, 0.0)
    assert set(snap["counts"]) == {s.value for s in ItemStatus}
    assert snap["counts"]["pending"] == ITEMS  # the store's counts, not the workflow's
    assert (snap["eta_seconds"], snap["eta"]) == (None, "-")  # paused: no end to estimate
    assert datetime.fromisoformat(snap["updated_at"]).utcoffset() == timedelta(0)

    done = _json(await batches.cli.run("status", batches.completed, "--json", "--follow"))
    assert (done["phase"], done["finished"], done["done"]) == ("completed", True, ITEMS)


async def test_status_off_a_terminal_is_plain_text(batches: Batches) -> None:
    result = await batches.cli.run("status", batches.completed)

    assert result.code == 0, result
    assert "\x1b[" not in result.stdout  # no colours, no cursor moves
    assert not set("━╸╺─│") & set(result.stdout), result  # no bar, no box
    lines = result.stdout.splitlines()
    assert lines[0] == f"batch {batches.completed}: {ITEMS} of {ITEMS} items done (100.0%)"
    assert re.search(r"^phase +completed *$", result.stdout, re.MULTILINE), result
    assert re.search(r"^ETA +- *$", result.stdout, re.MULTILINE), result


async def test_report_json(batches: Batches) -> None:
    cli, batch = batches.cli, batches.completed
    rows = (await cli.run("report", batch, "--json")).stdout.splitlines()
    written = await cli.run("report", batch, "-o", "report.csv")
    described = _json(await cli.run("report", batch, "-o", "again.csv", "--json"))

    items = [json.loads(r) for r in rows]
    assert len(items) == ITEMS
    assert all(list(item) == ITEM_FIELDS for item in items)
    assert {item["status"] for item in items} == {"succeeded", "failed"}
    assert all(
        datetime.fromisoformat(item["updated_at"]).utcoffset() == timedelta(0) for item in items
    )
    report = cli.tmp / "report.csv"
    assert written.code == 0, written
    assert written.stdout == f"wrote {ITEMS} item rows to {report}\n"
    with report.open(newline="") as f:
        assert len(list(csv.DictReader(f))) == ITEMS
    assert described == {
        "batch_id": batch,
        "report": "items",
        "path": str(cli.tmp / "again.csv"),
        "rows": ITEMS,
    }
    assert (cli.tmp / "again.csv").read_text() == report.read_text()


async def test_configure_says_what_it_changed(batches: Batches) -> None:
    cli, batch = batches.cli, batches.paused

    changed = await cli.run("configure", batch, "--max-in-flight", "3", "--max-failures", "5.0%")
    off = await cli.run("configure", batch, "--max-failures", "off")
    nothing = await cli.run("configure", batch)

    assert changed.code == 0, changed
    assert changed.stdout == (
        f"batch {batch}: configured: at most 3 chunks in flight; aborts past 5% failed items\n"
    )
    assert off.stdout == f"batch {batch}: configured: no abort on failures\n", off
    assert nothing.code == 2, nothing
    assert nothing.stderr == (
        "error: nothing to change: give --max-in-flight, --max-failures or both\n"
    )


async def test_status_exit_codes(batches: Batches) -> None:
    """Last: it cancels the paused batch."""
    cli = batches.cli
    assert (await cli.run("status", batches.completed)).code == 0
    assert (await cli.run("status", batches.completed, "--once")).code == 0
    assert (await cli.run("status", batches.paused, "--once")).code == 0  # not finished
    aborted = await cli.run("status", batches.aborted)
    assert aborted.code == 3, aborted
    assert (await cli.run("status", batches.aborted, "--json")).code == 3

    cancelled = await cli.run("cancel", batches.paused)
    assert cancelled.code == 0, cancelled
    followed = await cli.run("status", batches.paused, "--follow", timeout=120)
    assert followed.code == 4, followed
    assert re.search(r"^cancelled +20 *$", followed.stdout, re.MULTILINE), followed
    assert (await cli.run("status", batches.paused, "--json")).code == 4


async def test_status_of_a_terminated_batch_is_5_and_of_an_unknown_one_1(
    batches: Batches, dev_client: Client
) -> None:
    """After the others: it adds a batch of its own (the list tests count three)."""
    cli = batches.cli
    batch = f"gone-{uuid.uuid4().hex[:8]}"
    await _submit(cli, batch, "honk_horn")
    await dev_client.get_workflow_handle(batch_workflow_id(batch)).terminate("test: ended")

    terminated = await cli.run("status", batch)
    assert terminated.code == 5, terminated
    assert (await cli.run("status", batch, "--json")).code == 5

    unknown = await cli.run("status", "b-no-such-batch")
    assert unknown.code == 1, unknown
    assert unknown.stderr.startswith("error: "), unknown


# -- did you mean: checked before Temporal ------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("submit", "vins.csv", "--command", "lock_door"),
            "unknown command 'lock_door'; did you mean 'lock_doors'? (known commands: "
            + ", ".join(sorted(COMMANDS))
            + ")",
        ),
        (
            ("submit", "vins.csv", "--pipeline", "enrch"),
            "unknown pipeline 'enrch'; did you mean 'enrich'? (known: enrich, vehicle)",
        ),
        (
            ("list", "--command", "Honk_Horn"),
            "unknown command 'Honk_Horn'; did you mean 'honk_horn'? (known commands: "
            + ", ".join(sorted(COMMANDS))
            + ")",
        ),
        (
            ("list", "--status", "pasued"),
            "unknown status 'pasued'; did you mean 'paused'? (known: open, running, paused, "
            "completed, cancelled, aborted, failed, terminated, timed_out, canceled, not started)",
        ),
    ],
)
async def test_did_you_mean(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "vins.csv").write_text(f"vin\n{make_vin(1)}\n")
    # No Temporal at this address: the mistake is found first.
    cli = Cli(tmp_path, cli_env(tmp_path, "127.0.0.1:1"))

    result = await cli.run(*args)

    assert (result.code, result.stdout, result.stderr) == (1, "", f"error: {message}\n"), result
