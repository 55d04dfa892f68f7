"""What every command shares: settings, error reporting, the event loop."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Coroutine, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from pydantic import ValidationError
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from fleetbatch.config import Settings
from fleetbatch.errors import FleetbatchError
from fleetbatch.telemetry import protect_logged_keys

# soft_wrap: never cut a message or a path into 80-column lines in pipes and logs.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    r"""Rows under their headers on stdout, nothing cut.

    On a terminal: a table whose cells wrap (a word wider than its column folds onto
    the next line) rather than crop at the terminal's width. Elsewhere (a pipe, a file,
    a log): a header line, then one line per row, values separated by tabs, with
    backslashes, tabs and line breaks in a value written as ``\\``, ``\t``, ``\n``
    and ``\r`` so that a row stays one line.
    """
    if console.is_terminal:
        table = Table(*(Column(h, overflow="fold") for h in headers))
        for row in rows:
            table.add_row(*(Text(value) for value in row))  # data, never markup
        console.print(table)
        return
    out = console.file
    out.write("\t".join(_plain(h) for h in headers) + "\n")
    for row in rows:
        out.write("\t".join(_plain(value) for value in row) + "\n")
    out.flush()


def print_json(value: object) -> None:
    """``value`` as one line of JSON on stdout (``--json``): no markup, no wrapping,
    non-ASCII as it is."""
    out = console.file
    out.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
    out.flush()


def timestamp(moment: datetime) -> str:
    """A stored time as ``2025-01-31 14:05:09 UTC``: always with its zone."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _plain(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def settings() -> Settings:
    """Settings from the environment and env file, or a clean exit on bad ones; logs
    name items as they say (``telemetry.protect_logged_keys``)."""
    try:
        loaded = Settings()
    except (ValidationError, FleetbatchError) as exc:
        fail(f"invalid settings: {exc}")
    protect_logged_keys(loaded)
    return loaded


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error and exit with ``code``."""
    # The message is data (paths, header names): never read it as markup.
    errors.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)
    sys.exit(code)


async def _cancel_on_sigterm(coro: Coroutine[Any, Any, int | None]) -> int | None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await coro


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or Ctrl+C: a long-running command's cue to shut down
    gracefully (finish what it holds, then close its connections)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run(coro: Coroutine[Any, Any, int | None]) -> None:
    """Run a command's coroutine; fleetbatch errors become a message and exit code 1.

    SIGTERM stops it like Ctrl+C, so context managers close: an embedded dev
    server is never left running behind a terminated command.
    """
    try:
        code = asyncio.run(_cancel_on_sigterm(coro))
    except FleetbatchError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        errors.print("stopped")
        code = 130
    except asyncio.CancelledError:
        errors.print("stopped")
        code = 143
    sys.exit(code or 0)
