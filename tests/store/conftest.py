"""Store fixtures: every store test runs against SQLite and PostgreSQL.

PostgreSQL: a server at 127.0.0.1:5432 with trust auth, reached as the current
OS user through the database ``test``. A fresh, uniquely named database is
created for the test session and dropped at its end. Without a server the
PostgreSQL cases are skipped, or fail when ``CI`` is set.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
import pytest_asyncio

from fleetbatch.store import Store
from fleetbatch.store.tables import breakers, vin_leases

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
        reason = (
            f"PostgreSQL at {PG_HOST}:{PG_PORT} (database {PG_ADMIN_DB!r}) is unreachable: "
            f"{type(exc).__name__}: {exc}"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield f"postgresql://{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _run_in_thread(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty (SQLite) or shared-per-session (PostgreSQL) database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'fleetbatch.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A migrated store; closed after the test. VIN leases and breakers span
    batches, so a shared database drops those earlier tests left behind."""
    opened = await Store.open(store_url)
    async with opened.engine.begin() as conn:
        await conn.execute(vin_leases.delete())
        await conn.execute(breakers.delete())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def batch_id() -> str:
    """A batch id no other test uses (the PostgreSQL database is shared by the session)."""
    return f"b-{uuid.uuid4().hex[:12]}"
