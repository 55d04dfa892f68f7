"""What the chaos run runs on and breaks: PostgreSQL, NATS JetStream, a Temporal dev
server that keeps its state in a file, and fleetbatch's processes.

PostgreSQL and NATS come in two kinds. *private* (the default): a PostgreSQL
cluster made with ``initdb`` and a ``nats-server`` of the run's own, on free
ports in a temporary directory, so stopping them disturbs nobody else on the
machine (a test suite using the machine's services meanwhile). *machine*: the
machine's own services on 127.0.0.1:5432 and :4222, stopped and started the way
the image does (``pg_ctlcluster``, ``start-stop-daemon``; see ``.ci/run``) —
every exit path starts them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import nats
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client

from fleetbatch.store.db import async_url
from fleetbatch.temporal import DevServer
from fleetbatch.temporal.devserver import port_open

MACHINE_NATS_BINARY = Path("/usr/sbin/nats-server")
MACHINE_NATS_ARGS = ("-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/var/lib/nats-server")
MACHINE_NATS_LOG = "/var/log/nats-server.log"


class ServiceError(RuntimeError):
    """A service the run needs cannot be had (a binary missing, a start that failed)."""


def free_port() -> int:
    """A local port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_port(port: int, up: bool, timeout: float, what: str) -> None:
    """Until ``127.0.0.1:port`` accepts connections (``up``) or refuses them."""
    deadline = time.monotonic() + timeout
    while port_open(port) != up:
        if time.monotonic() > deadline:
            state = "accept" if up else "refuse"
            raise ServiceError(f"{what} did not {state} connections within {timeout:g}s")
        await asyncio.sleep(0.1)


async def _run(args: list[str], what: str, *, check: bool = True) -> int:
    done = await asyncio.to_thread(
        subprocess.run, args, capture_output=True, text=True, timeout=120, check=False
    )
    if check and done.returncode != 0:
        raise ServiceError(
            f"{what} failed ({done.returncode}): {' '.join(args)}\n{done.stdout}{done.stderr}"
        )
    return done.returncode


# PostgreSQL -------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` directory (Debian layout), or the one
    ``initdb`` on PATH lives in."""
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted(
            (p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: [int(x) if x.isdigit() else 0 for x in p.name.split(".")],
        )
        if versions:
            return versions[-1] / "bin"
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def missing_binaries(services: str) -> list[str]:
    """What the chosen kind of services needs and this machine lacks."""
    missing = []
    if services == "private":
        if postgres_bin_dir() is None:
            missing.append("PostgreSQL's initdb and pg_ctl")
        if shutil.which("nats-server") is None and not MACHINE_NATS_BINARY.exists():
            missing.append("nats-server")
    else:
        if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
            missing.append("pg_ctlcluster and a cluster in /etc/postgresql")
        if not MACHINE_NATS_BINARY.exists() or shutil.which("start-stop-daemon") is None:
            missing.append(f"{MACHINE_NATS_BINARY} and start-stop-daemon")
    return missing


class Postgres:
    """A PostgreSQL server the run may stop and start."""

    host = "127.0.0.1"
    port = 5432
    user = "postgres"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def up(self) -> bool:
        return port_open(self.port, self.host)

    async def setup(self) -> None:
        """Make it exist and run (once, at the start)."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def teardown(self) -> None:
        """Leave it as the machine needs it (always called, also after a failure)."""

    async def execute(self, sql: str) -> None:
        """One administrative statement (CREATE / DROP DATABASE) outside a transaction."""
        engine = create_async_engine(async_url(self.admin_url()), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()


class PrivatePostgres(Postgres):
    """A cluster of the run's own: ``initdb`` in a temporary directory, a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.user = "postgres"
        found = postgres_bin_dir()
        if found is None:
            raise ServiceError("PostgreSQL's initdb is not installed")
        self._bin = found
        self._dir = Path(tempfile.mkdtemp(prefix="fleetbatch-chaos-pg-"))
        self._data = self._dir / "data"
        # PostgreSQL refuses to run as root: then it runs as the postgres user.
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self._dir, "postgres", "postgres")
        else:
            self.user = getpass.getuser()

    def _tool(self, name: str, *args: str) -> list[str]:
        return [*self._as, str(self._bin / name), *args]

    async def setup(self) -> None:
        await _run(
            self._tool(
                "initdb", "-D", str(self._data), "-U", self.user, "-A", "trust", "-E", "UTF8"
            ),
            "initdb",
        )
        await self.start()

    async def start(self) -> None:
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self._dir} -c max_connections=300"
        )
        log = str(self._dir / "postgresql.log")
        await _run(
            [
                *self._tool("pg_ctl", "-D", str(self._data), "-l", log, "-w", "-t", "60"),
                *("-o", options, "start"),
            ],
            "starting PostgreSQL",
        )

    async def stop(self) -> None:
        await _run(
            self._tool("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "-t", "60", "stop"),
            "stopping PostgreSQL",
        )

    async def teardown(self) -> None:
        if (self._data / "postmaster.pid").exists():
            await _run(
                self._tool("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop"),
                "stopping PostgreSQL",
                check=False,
            )
        shutil.rmtree(self._dir, ignore_errors=True)


class MachinePostgres(Postgres):
    """The machine's cluster on 127.0.0.1:5432 (trust auth), via ``pg_ctlcluster``."""

    def __init__(self) -> None:
        versions = sorted(os.listdir("/etc/postgresql"))
        if not versions:
            raise ServiceError("no PostgreSQL cluster in /etc/postgresql")
        self._version = versions[0]

    def _ctl(self, action: str) -> list[str]:
        return ["pg_ctlcluster", "--skip-systemctl-redirect", self._version, "main", action]

    async def setup(self) -> None:
        if not self.up():
            await self.start()

    async def start(self) -> None:
        await _run(self._ctl("start"), "pg_ctlcluster start")
        await wait_port(self.port, True, 60, "PostgreSQL")

    async def stop(self) -> None:
        await _run(self._ctl("stop"), "pg_ctlcluster stop")

    async def teardown(self) -> None:
        if not self.up():
            await _run(self._ctl("start"), "pg_ctlcluster start", check=False)
            with contextlib.suppress(ServiceError):
                await wait_port(self.port, True, 60, "PostgreSQL")


# NATS -------------------------------------------------------------------------------


class Nats:
    """A NATS server with JetStream that the run may restart."""

    port = 4222

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def setup(self) -> None:
        if not port_open(self.port):
            await self.start()

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def teardown(self) -> None:
        """Leave it as the machine needs it (always called)."""

    async def wait_ready(self, timeout: float = 30) -> None:
        """Until it accepts connections and JetStream answers."""
        await wait_port(self.port, True, timeout, "NATS")
        deadline = time.monotonic() + timeout
        while True:
            try:
                nc = await nats.connect(self.url, connect_timeout=2, max_reconnect_attempts=0)
                try:
                    await nc.jetstream().account_info()
                    return
                finally:
                    await nc.close()
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise ServiceError(f"NATS JetStream not ready: {exc}") from exc
                await asyncio.sleep(0.2)


class PrivateNats(Nats):
    """A ``nats-server -js`` of the run's own on a free port, its store in ``root``."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self._root = root
        self._store = root / "nats"
        found = shutil.which("nats-server")
        self._binary = Path(found) if found else MACHINE_NATS_BINARY
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        with (self._root / "nats-server.log").open("ab") as out:
            self._process = subprocess.Popen(
                [
                    str(self._binary),
                    *("-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self._store)),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        await self.wait_ready()

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def teardown(self) -> None:
        await self.stop()


class MachineNats(Nats):
    """The machine's nats-server on 127.0.0.1:4222, via ``start-stop-daemon``."""

    async def start(self) -> None:
        await _run(
            [
                *("start-stop-daemon", "--start", "--oknodo", "--background"),
                *("--exec", str(MACHINE_NATS_BINARY), "--"),
                *MACHINE_NATS_ARGS,
                *("-l", MACHINE_NATS_LOG),
            ],
            "starting nats-server",
        )
        await self.wait_ready()

    async def stop(self) -> None:
        await _run(
            [
                *("start-stop-daemon", "--stop", "--oknodo", "--retry", "TERM/30/KILL/5"),
                *("--exec", str(MACHINE_NATS_BINARY)),
            ],
            "stopping nats-server",
        )
        await wait_port(self.port, False, 30, "NATS")

    async def teardown(self) -> None:
        if not port_open(self.port):
            with contextlib.suppress(ServiceError):
                await self.start()


def services_for(kind: str, root: Path) -> tuple[Postgres, Nats]:
    """PostgreSQL and NATS of the given kind (``private`` or ``machine``)."""
    if kind == "private":
        return PrivatePostgres(), PrivateNats(root)
    if kind == "machine":
        return MachinePostgres(), MachineNats()
    raise ValueError(f"services must be 'private' or 'machine', not {kind!r}")


# Temporal ---------------------------------------------------------------------------


class TemporalServer:
    """The Temporal dev server (fleetbatch's command line for it) with its state in
    ``db_file``, so that a SIGKILL and a start again keep every workflow."""

    def __init__(self, root: Path) -> None:
        self._server = DevServer(
            free_port(), free_port(), root / "temporal.db", root / "temporal.log"
        )
        self._log = root / "temporal.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return self._server.address

    async def start(self, timeout: float = 60) -> None:
        """Start it and wait until it answers a health check."""
        if port_open(self._server.port):
            raise ServiceError(f"port {self._server.port} is taken")
        with self._log.open("ab") as out:
            self.process = subprocess.Popen(
                self._server.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(
                    f"the Temporal server exited ({self.process.returncode}); see {self._log}"
                )
            if port_open(self._server.port):
                with contextlib.suppress(RuntimeError):
                    client = await Client.connect(self.address)
                    if await client.service_client.check_health():
                        return
            await asyncio.sleep(0.2)
        raise ServiceError(f"the Temporal server did not answer within {timeout:g}s")

    def exited(self) -> int | None:
        """Its exit code if it is no longer running."""
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        """SIGKILL: its state file stays as the kill left it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# fleetbatch's processes -----------------------------------------------------------


class Proc:
    """One ``fleetbatch`` command as a process, each start logging to a file of its own.

    ``expected_down`` is set while the run itself keeps it stopped, so that an exit
    the run did not cause is told apart (and counted as a finding).
    """

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self._logs = logs
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.expected_down = True

    @property
    def log(self) -> Path:
        return self._logs / f"{self.name}-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        out: IO[bytes]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fleetbatch.cli.main", *self.args],
                env=self.env,
                cwd=self._logs,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.expected_down = False

    def exited(self) -> int | None:
        """Its exit code, if it ran and is no longer running."""
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        self.expected_down = True
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def terminate(self, timeout: float = 60) -> int | None:
        """SIGTERM; the exit code of the graceful stop (None: it had to be killed)."""
        self.expected_down = True
        if self.process is None:
            return None
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def tail(self, lines: int = 5) -> str:
        """The last lines of the current log."""
        try:
            text_ = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text_.strip().splitlines()[-lines:])
