"""Engines: SQLite file by default, PostgreSQL by URL; migrations on open."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Insert, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_MIGRATIONS = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    """The URL with the async driver fleetbatch uses for its scheme."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and immediate write locks."""
    url = async_url(url)
    if not url.startswith("sqlite"):
        return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    if ":///" in url and ":memory:" not in url:
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 60})
    _configure_sqlite(engine.sync_engine)
    _sqlite_thread(engine)
    return engine


def sync_engines(engine: AsyncEngine) -> list[Engine]:
    """Every synchronous engine the store's statements go through (for event
    listeners): the async engine's, and on SQLite the one ``transaction`` runs."""
    runner = _sqlite_threads.get(engine.sync_engine)
    return [engine.sync_engine] + ([runner.engine] if runner else [])


def _configure_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout, foreign keys, and write transactions that lock at BEGIN."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy own transactions, so write ones can start IMMEDIATE: a
        # deferred read-then-write transaction fails at once under a concurrent writer.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers lock at BEGIN; readers (deferred, under WAL) never block anyone.
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


_WRITE_OPTION = "fleetbatch_write"
_write_locks: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _write_lock(engine: AsyncEngine) -> asyncio.Lock:
    """The lock the engine's writers of this process take turns on (SQLite)."""
    lock = _write_locks.get(engine.sync_engine)
    if lock is None:
        lock = _write_locks[engine.sync_engine] = asyncio.Lock()
    return lock


@contextlib.asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction. On SQLite, writers of one process take turns here.

    SQLite has one writer at a time; left to its busy handler, concurrent
    writers sleep and retry in steps of up to 100 ms, which stalled chunks for
    seconds under load. Queueing them in-process costs nothing of the sort.
    PostgreSQL writes run concurrently.
    """
    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            yield conn
        return
    async with _write_lock(engine), engine.connect() as plain:
        conn = await plain.execution_options(**{_WRITE_OPTION: True})
        async with conn.begin():
            yield conn


P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class _SQLiteThread:
    """A synchronous engine on the async engine's SQLite file, and the one thread its
    transactions run on."""

    engine: Engine
    thread: ThreadPoolExecutor


_sqlite_threads: weakref.WeakKeyDictionary[Engine, _SQLiteThread] = weakref.WeakKeyDictionary()


def _sqlite_thread(engine: AsyncEngine) -> _SQLiteThread:
    found = _sqlite_threads.get(engine.sync_engine)
    if found is None:
        sync = sqlalchemy.create_engine(
            engine.url.set(drivername="sqlite"),
            connect_args={"timeout": 60, "check_same_thread": False},
        )
        _configure_sqlite(sync)
        found = _SQLiteThread(sync, ThreadPoolExecutor(1, thread_name_prefix="fleetbatch-sqlite"))
        _sqlite_threads[engine.sync_engine] = found
    return found


def _run(engine: Engine, write: bool, work: Callable[[Connection], T]) -> T:
    with engine.connect() as plain:
        conn = plain.execution_options(**{_WRITE_OPTION: write})
        with conn.begin():
            return work(conn)


async def transaction(
    engine: AsyncEngine,
    work: Callable[Concatenate[Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``work(conn, *args, **kwargs)`` — plain statements on a synchronous
    connection — in one write transaction; its result.

    On SQLite the transaction runs on a thread of its own with a synchronous
    connection: one hand-off for the whole transaction. Through aiosqlite and
    SQLAlchemy's async layer each statement, and the BEGIN and the COMMIT, is a
    hand-off of its own: a chunk of 100's five store calls took ~40 ms that way,
    and take ~14 ms this way (``fleetbatch_bench.store_chunks``). It takes its
    turn with ``write_transaction``'s writers. On PostgreSQL ``work`` runs on the
    asyncpg connection through SQLAlchemy's ``run_sync``.
    """
    return await _in_transaction(engine, True, lambda conn: work(conn, *args, **kwargs))


async def snapshot(
    engine: AsyncEngine,
    work: Callable[Concatenate[Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``transaction`` for reads: no write lock, and on SQLite no write turn."""
    return await _in_transaction(engine, False, lambda conn: work(conn, *args, **kwargs))


async def _in_transaction(engine: AsyncEngine, write: bool, work: Callable[[Connection], T]) -> T:
    if engine.dialect.name != "sqlite":
        async with engine.begin() if write else engine.connect() as conn:
            return await conn.run_sync(work)
    runner = _sqlite_thread(engine)
    loop = asyncio.get_running_loop()
    if not write:
        return await loop.run_in_executor(runner.thread, _run, runner.engine, False, work)
    async with _write_lock(engine):
        done = loop.run_in_executor(runner.thread, _run, runner.engine, True, work)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            # The transaction runs to its end on its thread: the next writer waits for it.
            with contextlib.suppress(Exception):
                await done
            raise


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine's connections (and its SQLite thread, if it has one)."""
    runner = _sqlite_threads.pop(engine.sync_engine, None)
    if runner is not None:
        runner.thread.shutdown(wait=True)
        runner.engine.dispose()
    await engine.dispose()


def insert_ignoring_conflicts(conn: AsyncConnection | Connection, table: Table) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"unsupported database {conn.dialect.name!r}")


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


_migrate_lock = asyncio.Lock()

# The key of the PostgreSQL advisory lock every fleetbatch process takes to migrate:
# a fixed 64-bit number ("fleetmig" in ASCII) that nothing else is expected to use.
# Changing it lets an old and a new release migrate the same database at once.
MIGRATION_LOCK_KEY = 0x666C6565746D6967


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration (idempotent), one process at a time.

    Coroutines of one process take turns on an ``asyncio.Lock``. Processes take
    turns on the database: on SQLite the write transaction's ``BEGIN IMMEDIATE``;
    on PostgreSQL a transaction-scoped advisory lock, taken in the migration's own
    transaction before alembic looks at the schema. A second process starting on
    an empty database waits there until the first has committed, then finds the
    schema at head, instead of racing it to ``CREATE TABLE alembic_version``.
    """
    async with _migrate_lock, write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Released by the commit (or rollback) that ends the transaction.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await conn.run_sync(_upgrade)
