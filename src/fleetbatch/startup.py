"""Starting in any order: wait for a dependency with backoff, and say how it goes.

A long-running process (``fleetbatch worker``, ``dev``, the responder and the
simulators) started before PostgreSQL, Temporal or NATS answers does not exit:
:func:`wait_for` tries again, 1 s doubling to 30 s apart, logging one line per
failed attempt and no traceback. Short commands (``submit``, ``status``, …) keep
failing at once with their precise errors.

:class:`HealthFile` is the worker's readiness and liveness for supervisors and
Kubernetes probes: a small JSON file rewritten atomically on every change of
state and every 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError

from fleetbatch.errors import BusUnavailableError, TemporalUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")

Status = Literal["starting", "waiting", "ready", "stopping"]


def connection_failed(exc: BaseException) -> bool:
    """Whether ``exc`` says a service is not (yet) reachable, rather than misconfigured.

    Refused, reset, unresolvable or timed-out connections (``OSError``), Temporal or
    NATS not answering, and PostgreSQL refusing connections for now (starting up,
    shutting down, too many connections, a broken connection). A missing database,
    a bad password or an unknown namespace are not: they fail at once.
    """
    if isinstance(exc, OSError | TemporalUnavailableError | BusUnavailableError):
        return True
    # SQLAlchemy's driver errors carry PostgreSQL's SQLSTATE: class 08 is a
    # connection exception; 57P01-03 a server shutting down or starting; 53300 too
    # many connections. Its InterfaceError is a connection lost mid-way.
    if isinstance(exc, InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        if isinstance(orig, OSError):
            return True
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        return isinstance(state, str) and (
            state.startswith("08") or state in {"57P01", "57P02", "57P03", "53300"}
        )
    return False


_REFUSED = re.compile(rf"connection ?refused|\[Errno {errno.ECONNREFUSED}\]", re.IGNORECASE)


def reason(exc: BaseException) -> str:
    """A few words on why a connection attempt failed, for a one-line log message."""
    text = str(exc)
    if isinstance(exc, ConnectionRefusedError) or _REFUSED.search(text):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    first = text.strip().splitlines()[0] if text.strip() else ""
    if not first:
        return type(exc).__name__
    return first if len(first) <= 200 else first[:199] + "…"


async def wait_for(
    name: str,
    target: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    retry_if: Callable[[BaseException], bool] = connection_failed,
    initial_seconds: float = 1.0,
    max_seconds: float = 30.0,
    on_waiting: Callable[[str | None], object] | None = None,
) -> T:
    """``attempt()``'s result, trying again with backoff while it fails to connect.

    Each failure that ``retry_if`` accepts logs one line, e.g. ``waiting for
    PostgreSQL at 127.0.0.1:5433: connection refused (attempt 3; next try in 4s)``,
    calls ``on_waiting`` with ``"PostgreSQL at 127.0.0.1:5433"``, and sleeps
    ``initial_seconds``, doubling up to ``max_seconds``. Once the attempt succeeds
    after failures it logs that the service is up and calls ``on_waiting(None)``.
    Any other error is raised at once; cancelling stops the waiting.
    """
    what = f"{name} at {target}"
    delay = initial_seconds
    failures = 0
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not retry_if(exc):
                raise
            failures += 1
            log.warning(
                "waiting for %s: %s (attempt %d; next try in %ss)",
                what,
                reason(exc),
                failures,
                f"{delay:g}",
            )
            if on_waiting is not None:
                on_waiting(what)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_seconds)
            continue
        if failures:
            log.info("%s is up (after %d failed attempts)", what, failures)
            if on_waiting is not None:
                on_waiting(None)
        return result


class HealthFile:
    """A process's state in a JSON file: ``{"status", "waiting_for", "pid", "updated_at"}``.

    ``status`` is ``starting``, ``waiting`` (``waiting_for`` names the dependency),
    ``ready`` or ``stopping``. The file is replaced atomically (a temporary file and
    a rename) on every change and rewritten every ``refresh_seconds`` while the
    context is open, so a fresh ``updated_at`` says the process is alive; a stale
    one that it hangs, or that its workers stopped (``alive`` returned false).
    """

    def __init__(self, path: Path, *, refresh_seconds: float = 10.0) -> None:
        self.path = path
        self.refresh_seconds = refresh_seconds
        self.status: Status = "starting"
        self.waiting_for: str | None = None
        self._alive: Callable[[], bool] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._failed_write = False

    def set(self, status: Status, waiting_for: str | None = None) -> None:
        """Change the state and write it now."""
        self.status, self.waiting_for = status, waiting_for
        self.write()

    def waiting(self, what: str | None) -> None:
        """Waiting for ``what`` (``"PostgreSQL at host:port"``), or no longer (``None``):
        the ``on_waiting`` of :func:`wait_for`."""
        if what is None:
            self.set("starting")
        else:
            self.set("waiting", what)

    def ready(self, alive: Callable[[], bool] | None = None) -> None:
        """Ready; the refreshes go on only while ``alive()`` holds, if given."""
        self._alive = alive
        self.set("ready")

    def write(self) -> None:
        """Replace the file with the current state (a failure is logged, not raised)."""
        body = {
            "status": self.status,
            "waiting_for": self.waiting_for,
            "pid": os.getpid(),
            "updated_at": datetime.now(UTC).isoformat(),
        }
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(body) + "\n")
            os.replace(temporary, self.path)
        except OSError as exc:
            if not self._failed_write:  # once, not every 10 s
                log.warning("cannot write the health file %s: %s", self.path, exc)
            self._failed_write = True
            with contextlib.suppress(OSError):
                temporary.unlink()
        else:
            self._failed_write = False

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            if self._alive is None or self.status != "ready" or self._alive():
                self.write()

    async def __aenter__(self) -> HealthFile:
        self.set("starting")
        self._refresher = asyncio.create_task(self._refresh(), name="health-file")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        self.set("stopping")
