"""Store fixtures: every store test runs against SQLite and PostgreSQL (the session's
database from ``external.pg_url``; without a server those cases skip, or fail in CI)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from external import pg_url
from fleetbatch.store import Store
from fleetbatch.store.tables import breakers, item_leases


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty (SQLite) or shared-per-session (PostgreSQL) database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'fleetbatch.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest_asyncio.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A migrated store; closed after the test. Item leases and breakers span
    batches, so a shared database drops those earlier tests left behind."""
    opened = await Store.open(store_url)
    async with opened.engine.begin() as conn:
        await conn.execute(item_leases.delete())
        await conn.execute(breakers.delete())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def batch_id() -> str:
    """A batch id no other test uses (the PostgreSQL database is shared by the session)."""
    return f"b-{uuid.uuid4().hex[:12]}"


__all__ = ["pg_url"]  # a fixture
