"""Serving the app with uvicorn, alone (``fleetbatch api``) or beside the stack (``dev``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator

import uvicorn
from fastapi import FastAPI

from fleetbatch.errors import ConfigError

GRACE_SECONDS = 10


class _Server(uvicorn.Server):
    """Leaves signals to the caller, which stops everything it runs in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _serve(server: uvicorn.Server) -> None:
    # uvicorn logs why it could not start (address in use, a failed start-up) and
    # calls sys.exit: the caller reports it instead of the whole process ending.
    with contextlib.suppress(SystemExit):
        await server.serve()


@contextlib.asynccontextmanager
async def running_api(app: FastAPI, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` until the context exits; yields its base URL (port 0: a free one).

    Raises:
        ConfigError: it did not start (address in use, database or Temporal unreachable).
    """
    # A request still running after the grace period is cut off: an upload cut off
    # rolls back its one transaction, so nothing half-stored is left.
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACE_SECONDS
    )
    server = _Server(config)
    task = asyncio.create_task(_serve(server))
    while not server.started:
        if task.done():
            task.result()
            raise ConfigError(
                f"the API did not start on {host}:{port} (see the log above); "
                "FLEETBATCH_API_PORT chooses another port"
            )
        await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task
