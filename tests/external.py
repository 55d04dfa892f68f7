"""The external services some tests need: PostgreSQL and NATS JetStream.

PostgreSQL: a server at 127.0.0.1:5432 with trust auth, reached as the current
OS user through the database ``test``. A fresh, uniquely named database is
created for the test session and dropped at its end. NATS: a server with
JetStream at 127.0.0.1:4222; each test gets a namespace (subjects and streams)
of its own, deleted afterwards. Without a service the tests that need it are
skipped, or fail when ``CI`` is set. Import the fixtures into a test module or
conftest to use them.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import NoReturn, TypeVar

import asyncpg
import pytest

from fleetbatch.bus.nats import NatsBus, NatsOptions

T = TypeVar("T")

NATS_HOST = "127.0.0.1"
NATS_PORT = 4222
NATS_URL = f"nats://{NATS_HOST}:{NATS_PORT}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable(message: str) -> NoReturn:
    """A part the test needs is missing: skip locally; fail in CI, where it must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(message)


def require_service(name: str, host: str, port: int) -> None:
    """Go on if ``host:port`` accepts connections; else ``unavailable``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex((host, port)) == 0:
            return
    unavailable(f"{name} is not reachable at {host}:{port}")


PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN_DB = "test"

T = TypeVar("T")


def _run_in_thread(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on its own loop in another thread, away from pytest-asyncio's loop."""
    box: dict[str, object] = {}

    def target() -> None:
        async def main() -> T:
            return await factory()

        try:
            box["result"] = asyncio.run(main())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="pg-admin")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=getpass.getuser(), database=PG_ADMIN_DB, timeout=5
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    name = f"fleetbatch_test_{uuid.uuid4().hex[:12]}"
    try:
        _run_in_thread(lambda: _admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        unavailable(
            f"PostgreSQL at {PG_HOST}:{PG_PORT} (database {PG_ADMIN_DB!r}) is unreachable: "
            f"{type(exc).__name__}: {exc}"
        )
    try:
        yield f"postgresql://{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _run_in_thread(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def nats_namespace() -> AsyncIterator[str]:
    """A subject namespace (and streams) no other test or run uses, deleted afterwards."""
    require_service("NATS", NATS_HOST, NATS_PORT)
    namespace = f"fbtest_{uuid.uuid4().hex[:10]}"
    try:
        yield namespace
    finally:
        bus = await NatsBus.connect(NATS_URL, NatsOptions(namespace=namespace))
        await bus.delete_streams()
        await bus.close()
