"""End-to-end: ``fleetbatch dlq list`` and ``fleetbatch orphans`` as subprocesses whose
stdout is a pipe, on a SQLite store holding one long row: nothing of it is cut.

Piped, a table is a header line and one tab-separated line per row; on a terminal
it is a table whose cells wrap (checked in-process, on a recorded console).
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import pytest
from rich.console import Console

from fleetbatch.cli import common
from fleetbatch.store import Orphan, Store

# A 150-character error: words to wrap, and a word far wider than any column.
ERROR = "ConnectionResetError: the vehicle gateway closed the stream at offset 4096; " + (
    "trace=" + "0123456789abcdef" * 4 + "-end"
)
assert len(ERROR) == 150


def _env(tmp: Path) -> dict[str, str]:
    """This test's store; no terminal width or colour settings of the developer's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FLEETBATCH_")
        and k not in {"COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}
    }
    env.update(
        FLEETBATCH_ENV_FILE=str(tmp / "absent.env"),
        FLEETBATCH_DATA_DIR=str(tmp / "data"),
        FLEETBATCH_DATABASE_URL=f"sqlite:///{tmp / 'fleetbatch.db'}",
    )
    return env


async def _fleetbatch(tmp: Path, *args: str) -> str:
    """Run a command with stdout piped; its stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetbatch.cli.main",
        *args,
        env=_env(tmp),
        cwd=tmp,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def _store(tmp: Path) -> Store:
    return await Store.open(f"sqlite:///{tmp / 'fleetbatch.db'}")


async def test_dlq_list_prints_a_long_error_whole_on_one_line(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    try:
        await store.dead_letters.add("fleetbatch.responses", b'{"command_id": "c-1"}', ERROR, 5)
        [letter] = await store.dead_letters.list()
    finally:
        await store.close()

    out = await _fleetbatch(tmp_path, "dlq", "list")

    header, row, count = out.splitlines()
    assert header == "id\tsubject\tdeliveries\terror\tdead since\treplayed\tpayload"
    assert row.split("\t") == [
        str(letter.id),
        "fleetbatch.responses",
        "5",
        ERROR,
        f"{letter.created_at:%Y-%m-%d %H:%M:%S}",
        "-",
        '{"command_id": "c-1"}',
    ]
    assert count == "1 dead letters"


async def test_orphans_prints_a_long_error_whole_on_one_line(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    try:
        orphan = Orphan("c-7", "b-long-chunk-0", "b-long", "WDB00000000000007", False, ERROR)
        await store.orphans.add([orphan])
        [stored] = await store.orphans.list("b-long")
    finally:
        await store.close()

    out = await _fleetbatch(tmp_path, "orphans", "--batch", "b-long")

    header, row, count = out.splitlines()
    assert header == "received\tbatch\tkey\teffect id\tok\terror\tworkflow"
    assert stored.received_at is not None
    assert row.split("\t") == [
        f"{stored.received_at:%Y-%m-%d %H:%M:%S}",
        "b-long",
        "WDB00000000000007",
        "c-7",
        "no",
        ERROR,
        "b-long-chunk-0",
    ]
    assert count == "1 orphan responses"


def test_piped_values_with_tabs_and_line_breaks_stay_on_their_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=out, force_terminal=False))

    common.print_table(("a", "b"), [("x\ty", "line 1\nline 2\r\n"), ("C:\\temp", "[bold]z[/]")])

    assert out.getvalue().splitlines() == [
        "a\tb",
        "x\\ty\tline 1\\nline 2\\r\\n",
        "C:\\\\temp\t[bold]z[/]",
    ]


def test_on_a_narrow_terminal_cells_wrap_and_nothing_is_cropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=80, color_system=None)
    monkeypatch.setattr(common, "console", terminal)

    common.print_table(("id", "error", "workflow"), [("1", ERROR, "b-long-chunk-0")])

    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in out.getvalue()
    # The row's lines (the header's rules are heavy): its error cell's pieces, in order.
    pieces = [line.split("│")[2].strip() for line in lines if line.count("│") == 4]
    assert "".join(pieces).replace(" ", "") == ERROR.replace(" ", "")
    assert len(pieces) > 1  # it wrapped
