"""Running the real ``fleetbatch`` script as a subprocess: against the session's dev
server, on a test's own task queue, data directory and SQLite store, with fast
simulators and no terminal settings of the developer's."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

# Variables that change how Rich formats the output.
OUTPUT_VARIABLES = frozenset(
    {"COLUMNS", "LINES", "FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}
)


def fleetbatch_command() -> list[str]:
    """The installed ``fleetbatch`` script (the module when run from a bare checkout)."""
    script = Path(sys.executable).parent / "fleetbatch"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "fleetbatch.cli.main"]


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


@dataclass
class Cli:
    tmp: Path
    env: dict[str, str]

    def _command(self, *args: str) -> list[str]:
        return [*fleetbatch_command(), *args]

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        """A command running, its stdout and stderr piped."""
        return await asyncio.create_subprocess_exec(
            *self._command(*args),
            cwd=self.tmp,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def start_logged(self, *args: str, log: Path) -> asyncio.subprocess.Process:
        """A long-running command (a worker), its output in ``log``."""
        with log.open("wb") as out:
            return await asyncio.create_subprocess_exec(
                *self._command(*args),
                cwd=self.tmp,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )

    async def finish(self, process: asyncio.subprocess.Process, timeout: float) -> Result:
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            out, err = await process.communicate()
            raise AssertionError(
                f"still running after {timeout}s\n--- stdout\n{out.decode()}"
                f"--- stderr\n{err.decode()}"
            ) from None
        assert process.returncode is not None
        return Result(process.returncode, out.decode(), err.decode())

    async def run(self, *args: str, timeout: float = 60.0) -> Result:
        return await self.finish(await self.start(*args), timeout)


def cli_env(tmp: Path, temporal_address: str, **overrides: str) -> dict[str, str]:
    """The environment of a test's commands: its own task queue and data directory
    (SQLite store), every command answered at once, no colours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FLEETBATCH_") and k not in OUTPUT_VARIABLES
    }
    env.update(
        NO_COLOR="1",
        FLEETBATCH_ENV_FILE=str(tmp / "absent.env"),
        FLEETBATCH_DATA_DIR=str(tmp / "data"),
        FLEETBATCH_TEMPORAL_ADDRESS=temporal_address,
        FLEETBATCH_TEMPORAL_TASK_QUEUE=f"e2e-{uuid.uuid4().hex}",
        FLEETBATCH_METRICS_ADDRESS="",
        FLEETBATCH_IDLE_CLOSE_AFTER_SECONDS="0.5",
        FLEETBATCH_SIM_LATENCY_MS="5",
        FLEETBATCH_SIM_LATENCY_JITTER_MS="0",
        FLEETBATCH_SIM_FAILURE_RATE="0",
        FLEETBATCH_SIM_TIMEOUT_RATE="0",
        FLEETBATCH_SIM_NO_CONSENT_RATE="0",
    )
    env.update(overrides)
    return env
