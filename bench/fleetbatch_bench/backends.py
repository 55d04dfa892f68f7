"""The bus and database a benchmark runs on: the embedded defaults (in-process bus,
SQLite file) or the production ones (NATS JetStream, PostgreSQL).

For each configuration the production backends get a fresh PostgreSQL database
(dropped afterwards) and a NATS namespace of their own (streams deleted
afterwards), so runs never see each other's data.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from fleetbatch.bus.nats import NatsBus, NatsOptions
from fleetbatch.store.db import async_url

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_POSTGRESQL_URL = "postgresql://127.0.0.1:5432/test"
BUSES = ("memory", "nats")
DATABASES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Backends:
    """Which bus and database; ``nats_url`` and ``postgresql_url`` say where they are
    (the PostgreSQL URL names a database the benchmark may create others from)."""

    bus: str = "memory"
    db: str = "sqlite"
    nats_url: str = DEFAULT_NATS_URL
    postgresql_url: str = DEFAULT_POSTGRESQL_URL

    @property
    def label(self) -> str:
        return f"{self.bus}+{self.db}"

    @property
    def embedded(self) -> bool:
        """Whether these are the embedded defaults."""
        return (self.bus, self.db) == ("memory", "sqlite")


async def _admin(url: str, sql: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def settings_for(backends: Backends) -> AsyncIterator[dict[str, Any]]:
    """Settings overrides for one configuration's run on ``backends``; cleans up after."""
    overrides: dict[str, Any] = {}
    tag = uuid.uuid4().hex[:10]
    database: str | None = None
    if backends.db == "postgresql":
        database = f"fleetbatch_bench_{tag}"
        await _admin(backends.postgresql_url, f'CREATE DATABASE "{database}"')
        overrides["database_url"] = str(
            make_url(backends.postgresql_url).set(database=database).render_as_string(False)
        )
    if backends.bus == "nats":
        overrides["bus"] = backends.nats_url
        overrides["bus_namespace"] = f"fbbench_{tag}"
    try:
        yield overrides
    finally:
        if backends.bus == "nats":
            bus = await NatsBus.connect(
                backends.nats_url, NatsOptions(namespace=overrides["bus_namespace"])
            )
            await bus.delete_streams()
            await bus.close()
        if database is not None:
            await _admin(
                backends.postgresql_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'
            )
