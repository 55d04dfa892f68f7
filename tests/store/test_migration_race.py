"""Two processes opening an empty PostgreSQL database at the same moment: both
migrate it, neither dies (issue 14.1: `UniqueViolationError … alembic_version …
already exists`). Real processes, because the in-process migration lock would
serialise coroutines of one process anyway."""

from __future__ import annotations

import asyncio
import getpass
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from alembic.script import ScriptDirectory

import fleetbatch.store
from external import PG_ADMIN_DB, PG_HOST, PG_PORT, unavailable

# Each child imports everything, says "ready", then waits for the word to open the
# store: both start migrating within a millisecond or so of each other.
CHILD = """
import asyncio, sys
from fleetbatch.store import Store

async def main(url: str) -> None:
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    store = await Store.open(url)
    await store.close()
    print("opened", flush=True)

asyncio.run(main(sys.argv[1]))
"""

MIGRATIONS = Path(fleetbatch.store.__file__).parent / "migrations"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=getpass.getuser(), database=PG_ADMIN_DB, timeout=5
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    """The name of a new, empty PostgreSQL database, dropped afterwards."""
    name = f"fleetbatch_race_{uuid.uuid4().hex[:12]}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        unavailable(
            f"PostgreSQL at {PG_HOST}:{PG_PORT} (database {PG_ADMIN_DB!r}) is unreachable: "
            f"{type(exc).__name__}: {exc}"
        )
    try:
        yield name
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_two_processes_migrate_an_empty_database_at_once(empty_database: str) -> None:
    url = f"postgresql://{PG_HOST}:{PG_PORT}/{empty_database}"
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        async with asyncio.timeout(60):
            for child in children:
                assert child.stdout is not None
                assert await child.stdout.readline() == b"ready\n"
            for child in children:
                assert child.stdin is not None
                child.stdin.write(b"go\n")
            await asyncio.gather(*(c.stdin.drain() for c in children if c.stdin is not None))
            outputs = [await child.communicate() for child in children]
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()

    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()[-3000:]
        assert out == b"opened\n"

    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=getpass.getuser(), database=empty_database, timeout=5
    )
    try:
        versions = [r["version_num"] for r in await conn.fetch("SELECT * FROM alembic_version")]
    finally:
        await conn.close()
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert versions == [head]
