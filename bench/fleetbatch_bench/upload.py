"""``fleetbatch bench --upload-rows N``: one file of N rows through the HTTP API.

It starts an in-memory dev server and ``fleetbatch api`` as a process of its own,
posts a generated CSV as a chunked multipart stream (no Content-Length, never in
memory on either side), and reads the API process's peak RSS from ``/proc``. No
worker runs: this measures intake (parse, validate, store, start the workflow),
and the stored items stay pending.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from temporalio.client import Client

from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.temporal import DevServer, ensure_search_attributes
from fleetbatch_bench.procfs import peak_rss_bytes, rss_bytes
from fleetbatch_bench.runner import free_port

TOKEN = "bench-operator-token"
BOUNDARY = "fleetbatch-bench-boundary"
PIECE = 256 * 1024


class UploadBenchError(Exception):
    """The API did not start or the upload did not succeed."""


@dataclass(frozen=True)
class UploadBenchResult:
    rows: int
    file_bytes: int
    seconds: float
    accepted: int
    rows_per_second: float
    api_rss_before_bytes: int | None
    api_peak_rss_bytes: int | None
    database: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def write_vin_file(path: Path, rows: int) -> int:
    """A CSV of ``rows`` distinct valid VINs, written in pieces; returns its size."""
    with path.open("w") as out:
        out.write("vin\n")
        for start in range(0, rows, 10_000):
            out.write("".join(f"{make_vin(i)}\n" for i in range(start, min(rows, start + 10_000))))
    return path.stat().st_size


def _body(path: Path, command: str) -> Iterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="command"\r\n\r\n{command}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    with path.open("rb") as f:
        while piece := f.read(PIECE):
            yield piece
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _post(port: int, path: Path, command: str) -> dict[str, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    try:
        headers = {
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        }
        conn.request("POST", "/api/batches", _body(path, command), headers, encode_chunked=True)
        response = conn.getresponse()
        text = response.read().decode()
    finally:
        conn.close()
    if response.status != 201:
        raise UploadBenchError(f"upload answered {response.status}: {text[:300]}")
    answer: dict[str, object] = json.loads(text)
    return answer


def _wait_ready(port: int, api: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise UploadBenchError(f"fleetbatch api exited with {api.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise UploadBenchError(f"fleetbatch api was not ready within {timeout:g}s")


def _api_env(workdir: Path, temporal: str, port: int, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETBATCH_")}
    env |= {
        "FLEETBATCH_ENV_FILE": str(workdir / "none.env"),
        "FLEETBATCH_ENVIRONMENT": "production",
        "FLEETBATCH_DATA_DIR": str(workdir),
        "FLEETBATCH_TEMPORAL_ADDRESS": temporal,
        "FLEETBATCH_API_PORT": str(port),
        "FLEETBATCH_API_OPERATOR_TOKENS": json.dumps([TOKEN]),
        "FLEETBATCH_API_MAX_UPLOAD_BYTES": str(1 << 40),
        # Production refuses to run without them (docs/security.md): throwaway ones.
        "FLEETBATCH_CODEC_KEYS": f"bench:{base64.b64encode(os.urandom(32)).decode()}",
        "FLEETBATCH_KEY_HASH_SECRET": base64.b64encode(os.urandom(32)).decode(),
    }
    if database_url:
        env["FLEETBATCH_DATABASE_URL"] = database_url
    return env


async def run_upload_bench(
    rows: int, workdir: Path, *, command: str = "lock_doors", database_url: str | None = None
) -> UploadBenchResult:
    """Upload ``rows`` generated VINs through a fresh API process and measure it.

    Raises:
        UploadBenchError: the API did not start, or the upload failed.
    """
    path = workdir / "vins.csv"
    size = write_vin_file(path, rows)
    server = DevServer(free_port(), free_port(), db_file=None, log_file=workdir / "temporal.log")
    await server.start()
    try:
        await ensure_search_attributes(await Client.connect(server.address))
        port = free_port()
        with (workdir / "api.log").open("wb") as log:
            api = subprocess.Popen(
                [sys.executable, "-m", "fleetbatch.cli.main", "api"],
                env=_api_env(workdir, server.address, port, database_url),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                await asyncio.to_thread(_wait_ready, port, api)
                before = rss_bytes(api.pid)
                started = time.perf_counter()
                answer = await asyncio.to_thread(_post, port, path, command)
                seconds = time.perf_counter() - started
                peak = peak_rss_bytes(api.pid)
            finally:
                api.terminate()
                api.wait(30)
    finally:
        server.stop()
    accepted = answer.get("accepted")
    if not isinstance(accepted, int):
        raise UploadBenchError(f"unexpected answer: {answer}")
    return UploadBenchResult(
        rows=rows,
        file_bytes=size,
        seconds=round(seconds, 2),
        accepted=accepted,
        rows_per_second=round(rows / seconds) if seconds else 0.0,
        api_rss_before_bytes=before,
        api_peak_rss_bytes=peak,
        database="postgresql" if database_url else "sqlite",
    )
