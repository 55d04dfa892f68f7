"""Starting in any order (issue 14.2): a `fleetbatch worker` started while
PostgreSQL, or Temporal, does not answer yet keeps running, logs one line per
attempt (no traceback) and says `waiting` in its health file; once the service
appears on its port, the worker turns `ready` and runs a batch, and SIGTERM
stops it cleanly. The service "appears" as a TCP forwarder to the real one,
started on the port the worker was given."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from external import PG_HOST, PG_PORT, pg_url
from fleetbatch.config import Settings
from fleetbatch.domain import TERMINAL
from fleetbatch.services.submission import submit_file
from fleetbatch.startup import HealthFile, reason, wait_for
from fleetbatch.store import Store
from fleetbatch.temporal import DevServer, connect
from processes import Process
from support import csv_bytes, vins

pytestmark = pytest.mark.integration

__all__ = ["pg_url"]  # a fixture

VINS = 30


def free_port() -> int:
    """A local port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Forwarder:
    """Listens on ``127.0.0.1:port`` and relays every connection to ``target``."""

    def __init__(self, port: int, target_host: str, target_port: int) -> None:
        self.port = port
        self.target = (target_host, target_port)
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        finally:
            self._tasks.discard(task)

    async def __aenter__(self) -> Forwarder:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


def health(path: Path) -> dict[str, Any] | None:
    """The health file's content, or None before the worker wrote it."""
    try:
        body: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return body


async def until(check: Callable[[], Awaitable[bool] | bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds, else fail saying ``what`` did not happen."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = check()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"within {timeout:g}s: {what}")


def worker_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLEETBATCH_DATA_DIR": str(tmp_path),
        "FLEETBATCH_METRICS_ADDRESS": "",
        "FLEETBATCH_APPLY_RATES": "false",
        "FLEETBATCH_IDLE_CLOSE_AFTER_SECONDS": "1",
        "FLEETBATCH_WORKER_HEALTH_FILE": str(tmp_path / "health.json"),
        "FLEETBATCH_SIM_LATENCY_MS": "5",
        "FLEETBATCH_SIM_LATENCY_JITTER_MS": "2",
        "FLEETBATCH_SIM_TIMEOUT_RATE": "0",
        **{f"FLEETBATCH_{k.upper()}": v for k, v in settings.items()},
    }


@contextlib.asynccontextmanager
async def running(worker: Process) -> AsyncIterator[Process]:
    worker.start()
    try:
        yield worker
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(10)


async def wait_then_run_a_batch(
    worker: Process,
    forwarder: Forwarder,
    waiting_for: str,
    settings: Settings,
    health_file: Path,
) -> None:
    """The worker waits for ``waiting_for``; the forwarder starts; the worker turns
    ready, runs a batch of VINs and stops cleanly on SIGTERM."""
    line = f"waiting for {waiting_for}: connection refused (attempt 2; next try in 2s)"
    await until(lambda: line in worker.log.read_text(), 15, f"the worker logs {line!r}")
    assert worker.proc is not None and worker.proc.poll() is None, worker.log.read_text()
    state = health(health_file)
    assert state is not None and state["status"] == "waiting", state
    assert state["waiting_for"] == waiting_for
    assert state["pid"] == worker.proc.pid

    async with forwarder:
        await until(
            lambda: (health(health_file) or {}).get("status") == "ready",
            15,
            f"the worker is ready once {waiting_for} answers:\n{worker.log.read_text()[-3000:]}",
        )
        assert (health(health_file) or {})["waiting_for"] is None
        store = await Store.open(settings.database_url or "")
        client = await connect(settings)
        try:
            upload = await submit_file(
                store,
                client,
                settings,
                io.BytesIO(csv_bytes(vins(VINS, start=880_000))),
                filename="vins.csv",
                options={"command": "lock_doors"},
                chunk_size=10,
            )
            assert upload.accepted == VINS

            async def all_terminal() -> bool:
                counts = await store.items.counts(upload.batch_id)
                return sum(counts[t] for t in TERMINAL) == VINS

            await until(all_terminal, 20, "every item of the batch is terminal")
        finally:
            await store.close()

        code = await asyncio.to_thread(worker.terminate)
        log = worker.log.read_text()
        assert code == 0, log[-3000:]
        assert "worker stopped cleanly" in log
    assert (health(health_file) or {})["status"] == "stopping"

    # One line per failed attempt, each a plain message with no traceback.
    assert "Traceback" not in log
    attempts = [m for m in log.splitlines() if f"waiting for {waiting_for}" in m]
    assert len(attempts) >= 2
    for n, message in enumerate(attempts, 1):
        assert json.loads(message)["message"].startswith(f"waiting for {waiting_for}: ")
        assert f"(attempt {n}; next try in " in message
    assert forwarder.connections > 0


async def test_a_worker_started_before_postgresql_waits_for_it(
    dev_server: DevServer, pg_url: str, tmp_path: Path
) -> None:
    port = free_port()
    queue = f"tq-{uuid.uuid4()}"
    database = pg_url.rsplit("/", 1)[1]
    env = worker_env(
        tmp_path,
        temporal_address=dev_server.address,
        temporal_task_queue=queue,
        database_url=f"postgresql://127.0.0.1:{port}/{database}",
    )
    settings = Settings(
        data_dir=tmp_path,
        database_url=pg_url,
        temporal_address=dev_server.address,
        temporal_task_queue=queue,
    )
    async with running(Process("worker", ["worker"], env, tmp_path)) as worker:
        await wait_then_run_a_batch(
            worker,
            Forwarder(port, PG_HOST, PG_PORT),
            f"PostgreSQL at 127.0.0.1:{port}",
            settings,
            tmp_path / "health.json",
        )


async def test_a_worker_started_before_temporal_waits_for_it(
    dev_server: DevServer, pg_url: str, tmp_path: Path
) -> None:
    port = free_port()
    queue = f"tq-{uuid.uuid4()}"
    env = worker_env(
        tmp_path,
        temporal_address=f"127.0.0.1:{port}",
        temporal_task_queue=queue,
        database_url=pg_url,
    )
    settings = Settings(
        data_dir=tmp_path,
        database_url=pg_url,
        temporal_address=dev_server.address,
        temporal_task_queue=queue,
    )
    async with running(Process("worker", ["worker"], env, tmp_path)) as worker:
        await wait_then_run_a_batch(
            worker,
            Forwarder(port, "127.0.0.1", dev_server.port),
            f"Temporal at 127.0.0.1:{port}",
            settings,
            tmp_path / "health.json",
        )


# wait_for and the health file on their own.


async def test_wait_for_backs_off_and_logs_one_line_per_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    heard: list[str | None] = []

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5433)")
        return "up"

    with caplog.at_level(logging.INFO, logger="fleetbatch.startup"):
        result = await wait_for(
            "PostgreSQL",
            "127.0.0.1:5433",
            attempt,
            initial_seconds=0.01,
            max_seconds=0.02,
            on_waiting=heard.append,
        )
    assert result == "up"
    messages = [r.getMessage() for r in caplog.records]
    waiting = "waiting for PostgreSQL at 127.0.0.1:5433: connection refused"
    assert messages == [
        f"{waiting} (attempt 1; next try in 0.01s)",
        f"{waiting} (attempt 2; next try in 0.02s)",
        f"{waiting} (attempt 3; next try in 0.02s)",
        "PostgreSQL at 127.0.0.1:5433 is up (after 3 failed attempts)",
    ]
    assert all(r.exc_info is None for r in caplog.records)
    assert heard == ["PostgreSQL at 127.0.0.1:5433"] * 3 + [None]


async def test_wait_for_raises_other_errors_at_once() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("database 'nope' does not exist")

    with pytest.raises(ValueError):
        await wait_for("PostgreSQL", "db:5432", attempt, initial_seconds=0.01)
    assert calls == 1


def test_reasons_are_short() -> None:
    temporal = (
        "no Temporal server at 127.0.0.1:5999: Failed client connect: Server connection "
        'error: tonic::transport::Error(Transport, ConnectError(ConnectError("tcp connect '
        'error", 127.0.0.1:5999, Os { code: 111, kind: ConnectionRefused, message: '
        '"Connection refused" })))'
    )
    assert reason(RuntimeError(temporal)) == "connection refused"
    assert reason(TimeoutError()) == "timed out"
    assert reason(OSError("Multiple exceptions: [Errno 111] Connect call failed")) == (
        "connection refused"
    )
    assert reason(RuntimeError("x" * 300)).endswith("…")


async def test_the_health_file_is_replaced_and_refreshed(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "health.json"
    async with HealthFile(path, refresh_seconds=0.05) as h:
        assert (health(path) or {})["status"] == "starting"
        h.waiting("Temporal at t:7233")
        assert health(path) == {
            "status": "waiting",
            "waiting_for": "Temporal at t:7233",
            "pid": os.getpid(),
            "updated_at": (health(path) or {})["updated_at"],
        }
        h.waiting(None)
        alive = True
        h.ready(alive=lambda: alive)
        first = (health(path) or {})["updated_at"]
        await asyncio.sleep(0.2)
        refreshed = (health(path) or {})["updated_at"]
        assert refreshed > first  # liveness: rewritten while ready
        alive = False  # the workers stopped: the file goes stale
        await asyncio.sleep(0.1)
        stale = (health(path) or {})["updated_at"]
        await asyncio.sleep(0.2)
        assert (health(path) or {})["updated_at"] == stale
    assert (health(path) or {})["status"] == "stopping"
    assert [p.name for p in path.parent.iterdir()] == ["health.json"]  # no temporary left
    assert re.match(r"\d{4}-\d\d-\d\dT", stale)
