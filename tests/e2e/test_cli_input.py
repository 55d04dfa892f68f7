"""End-to-end: ``fleetbatch submit`` run as a real subprocess, fed bad input.

Every bad input must end with exit code 1, one precise ``error: …`` line on
stderr and nothing of the attempt in the database: no batch, upload, item or
rejection row, and no batch workflow on Temporal. The one exception is a file
whose every row is invalid: its rejections are the report, so they are kept
(with their batch and upload rows), but no item is and no workflow starts.
Files for the enrich pipeline (``--pipeline enrich``, users) are held to the same rules.

Each test has its own data dir (so its own SQLite database), its own task queue,
an env file that does not exist and an environment without the developer's
``FLEETBATCH_*`` variables. No worker runs, so accepted items stay pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from cli_support import fleetbatch_command
from fleetbatch.domain import ItemStatus
from fleetbatch.pipelines.enrich.output import output_dir, write_chunk_file
from fleetbatch.pipelines.vehicle.commands import COMMANDS
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.temporal import DevServer
from fleetbatch.workflows.ids import batch_workflow_id

CLOSED_ADDRESS = "127.0.0.1:1"
"""Nothing listens on port 1: a connection there is refused at once."""

TABLES = ("batches", "uploads", "items", "rejections")
NOTHING = dict.fromkeys(TABLES, 0)

# Variables that change how Rich or Python format the output.
_OUTPUT_VARIABLES = frozenset(
    {
        "COLUMNS",
        "LINES",
        "FORCE_COLOR",
        "CLICOLOR_FORCE",
        "TTY_COMPATIBLE",
        "TTY_INTERACTIVE",
        "PYTHONIOENCODING",
    }
)


# -- harness ------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        """stderr without line breaks.

        Rich hard-wraps the error line at 80 columns when stderr is not a terminal
        (a product bug: see ``test_error_message_is_not_hard_wrapped``). It keeps
        every character and only inserts newlines, so dropping them gives back the
        exact message.
        """
        return self.stderr.replace("\n", "")

    @property
    def output(self) -> str:
        """stdout without line breaks, for the same reason as ``error``."""
        return self.stdout.replace("\n", "")

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


@dataclass
class Cli:
    """The CLI with one test's settings, and that test's database."""

    tmp: Path
    env: dict[str, str]

    @property
    def db_path(self) -> Path:
        return Path(self.env["FLEETBATCH_DATA_DIR"]) / "fleetbatch.db"

    async def run(self, *args: str | Path, timeout: float = 60.0) -> Result:
        process = await asyncio.create_subprocess_exec(
            *fleetbatch_command(),
            *(str(a) for a in args),
            cwd=self.tmp,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.communicate()
            raise
        assert process.returncode is not None
        return Result(process.returncode, out.decode(), err.decode())

    async def submit(self, path: Path, *args: str) -> Result:
        return await self.run("submit", path, *args)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path)
        try:
            yield conn
        finally:
            conn.close()

    def stored(self, batch_id: str | None = None) -> dict[str, int]:
        """Rows per table (only the batch's, when given); all zero without a database."""
        if not self.db_path.exists():
            return dict(NOTHING)
        counts = {}
        with self._db() as conn:
            for table in TABLES:
                query, params = f"SELECT count(*) FROM {table}", ()
                if batch_id is not None:
                    column = "id" if table == "batches" else "batch_id"
                    query, params = f"{query} WHERE {column} = ?", (batch_id,)
                counts[table] = conn.execute(query, params).fetchone()[0]
        return counts

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with self._db() as conn:
            return conn.execute(sql, params).fetchall()

    def dump(self, batch_id: str) -> dict[str, list[tuple[object, ...]]]:
        """Every row of the batch, table by table."""
        return {
            table: self.query(
                f"SELECT * FROM {table} WHERE {'id' if table == 'batches' else 'batch_id'} = ? "
                "ORDER BY 1",
                batch_id,
            )
            for table in TABLES
        }


def _env(tmp: Path, address: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FLEETBATCH_") and k not in _OUTPUT_VARIABLES
    }
    env.update(
        NO_COLOR="1",
        FLEETBATCH_ENV_FILE=str(tmp / "absent.env"),
        FLEETBATCH_DATA_DIR=str(tmp / "data"),
        FLEETBATCH_TEMPORAL_ADDRESS=address,
        FLEETBATCH_TEMPORAL_TASK_QUEUE=f"e2e-{uuid.uuid4().hex}",
    )
    return env


@pytest.fixture
def offline_cli(tmp_path: Path) -> Cli:
    """The CLI pointed at an address where no Temporal server listens."""
    return Cli(tmp_path, _env(tmp_path, CLOSED_ADDRESS))


@pytest.fixture
def cli(tmp_path: Path, dev_server: DevServer) -> Cli:
    """The CLI pointed at the session's dev server; no worker polls its task queue."""
    return Cli(tmp_path, _env(tmp_path, dev_server.address))


def new_batch_id() -> str:
    return f"e2e-{uuid.uuid4().hex[:16]}"


def vins(n: int, start: int = 0) -> list[str]:
    return [make_vin(i) for i in range(start, start + n)]


def csv_bytes(values: list[str], header: str = "vin") -> bytes:
    return (header + "\n" + "".join(f"{v}\n" for v in values)).encode()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def table_rows(output: str) -> list[list[str]]:
    """The words of each output line, without the table's column rules."""
    return [[w for w in line.split() if w not in {"│", "|"}] for line in output.splitlines()]


def assert_error(result: Result, message: str) -> None:
    """Exit code 1 and exactly ``error: <message>`` on stderr."""
    assert result.code == 1, result
    assert result.error == f"error: {message}", result


async def workflow_exists(client: Client, batch_id: str) -> bool:
    try:
        await client.get_workflow_handle(batch_workflow_id(batch_id)).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def assert_nothing_stored(cli: Cli, client: Client | None, batch_id: str) -> None:
    assert cli.stored() == NOTHING
    if client is not None:
        assert not await workflow_exists(client, batch_id)


# -- whole-file errors: nothing stored ----------------------------------------


@pytest.mark.parametrize("data", [b"", b"\n\r\n   \n"], ids=["zero-bytes", "blank-lines-only"])
async def test_empty_file(cli: Cli, dev_client: Client, data: bytes) -> None:
    batch = new_batch_id()
    path = write(cli.tmp / "empty.csv", data)

    result = await cli.submit(path, "--command", "lock_doors", "--batch", batch)

    assert_error(result, "file is empty: no rows to process")
    await assert_nothing_stored(cli, dev_client, batch)


async def test_no_vin_column(cli: Cli, dev_client: Client) -> None:
    batch = new_batch_id()
    path = write(cli.tmp / "novin.csv", b"a,b\n1,2\n3,4\n")

    result = await cli.submit(path, "--command", "lock_doors", "--batch", batch)

    assert_error(result, "line 1: no 'vin' column in the header (found: a, b)")
    await assert_nothing_stored(cli, dev_client, batch)


async def test_header_only(cli: Cli, dev_client: Client) -> None:
    batch = new_batch_id()
    path = write(cli.tmp / "header.csv", b"vin\n")

    result = await cli.submit(path, "--command", "lock_doors", "--batch", batch)

    assert_error(result, "file has a header but no rows to process")
    await assert_nothing_stored(cli, dev_client, batch)


@pytest.mark.parametrize(
    ("valid", "invalid"),
    [(1, 0), (1500, 1200)],
    ids=["line-3", "after-items-and-rejections-were-flushed"],
)
async def test_not_utf8_after_valid_rows(
    cli: Cli, dev_client: Client, valid: int, invalid: int
) -> None:
    """The rows before the bad line are read and (past 1000) written: all rolled back."""
    batch = new_batch_id()
    bad_line = 2 + valid + invalid
    data = csv_bytes(vins(valid) + [f"bad{i}" for i in range(invalid)]) + b"1FB\xe9xyz\n"
    path = write(cli.tmp / "latin1.csv", data)

    result = await cli.submit(path, "--command", "lock_doors", "--batch", batch)

    assert_error(result, f"line {bad_line}: not valid UTF-8 (byte 0xe9 at offset 3)")
    await assert_nothing_stored(cli, dev_client, batch)


async def test_line_too_long(cli: Cli, dev_client: Client) -> None:
    batch = new_batch_id()
    path = write(cli.tmp / "long.csv", b"vin\n" + b"A" * (10 * 1024 * 1024) + b"\n")

    result = await cli.submit(path, "--command", "lock_doors", "--batch", batch)

    assert_error(result, "line 2: longer than 65536 bytes")
    await assert_nothing_stored(cli, dev_client, batch)


# -- checked before Temporal: no server needed --------------------------------


async def test_unknown_command_needs_no_temporal(offline_cli: Cli) -> None:
    path = write(offline_cli.tmp / "vins.csv", csv_bytes(vins(3)))

    result = await offline_cli.submit(path, "--command", "frobnicate")

    known = ", ".join(sorted(COMMANDS))
    assert "lock_doors" in known
    assert_error(result, f"unknown command 'frobnicate' (known commands: {known})")
    assert offline_cli.stored() == NOTHING


async def test_missing_file(offline_cli: Cli) -> None:
    path = offline_cli.tmp / "missing.csv"

    result = await offline_cli.submit(path, "--command", "lock_doors")

    assert_error(result, f"no such file: {path}")
    assert offline_cli.stored() == NOTHING


async def test_no_temporal_server(offline_cli: Cli) -> None:
    path = write(offline_cli.tmp / "vins.csv", csv_bytes(vins(3)))

    result = await offline_cli.submit(path, "--command", "lock_doors")

    assert result.code == 1, result
    assert result.error.startswith(f"error: no Temporal server at {CLOSED_ADDRESS}: "), result
    assert "Traceback" not in result.stderr, result
    assert offline_cli.stored() == NOTHING


# -- other refusals -------------------------------------------------------------


async def test_invalid_batch_id(cli: Cli) -> None:
    path = write(cli.tmp / "vins.csv", csv_bytes(vins(3)))

    result = await cli.submit(path, "--command", "lock_doors", "--batch", "bad id!")

    assert_error(
        result, "invalid batch id 'bad id!': use 1-64 letters, digits, '.', '_' or '-' (no '..')"
    )
    assert cli.stored() == NOTHING


async def test_new_batch_without_command(cli: Cli, dev_client: Client) -> None:
    batch = new_batch_id()
    path = write(cli.tmp / "vins.csv", csv_bytes(vins(3)))

    result = await cli.submit(path, "--batch", batch)

    assert_error(
        result,
        "a new vehicle batch needs the command to send (backoffice_update, flash_lights, "
        "honk_horn, lock_doors, ota_update, unlock_doors)",
    )
    await assert_nothing_stored(cli, dev_client, batch)


async def test_failed_attempts_leave_an_existing_batch_as_it_was(
    cli: Cli, dev_client: Client
) -> None:
    batch = new_batch_id()
    first = await cli.submit(
        write(cli.tmp / "first.csv", csv_bytes(vins(3))), "--command", "lock_doors", "-b", batch
    )
    assert first.code == 0, first
    before = cli.dump(batch)
    assert len(before["items"]) == 3

    not_utf8 = write(cli.tmp / "more.csv", csv_bytes(vins(5, start=10)) + b"\xff\n")
    result = await cli.submit(not_utf8, "--batch", batch)
    assert_error(result, "line 7: not valid UTF-8 (byte 0xff at offset 0)")
    assert cli.dump(batch) == before

    other = write(cli.tmp / "other.csv", csv_bytes(vins(5, start=20)))
    result = await cli.submit(other, "--command", "unlock_doors", "--batch", batch)
    assert_error(result, f"batch {batch!r} runs 'lock_doors', not 'unlock_doors'")
    assert cli.dump(batch) == before
    assert cli.stored() == {"batches": 1, "uploads": 1, "items": 3, "rejections": 0}


# -- every row invalid: the rejections are the report ---------------------------


async def test_every_row_invalid(cli: Cli, dev_client: Client) -> None:
    batch = new_batch_id()
    good = make_vin(0)
    wrong = "0" if good[8] != "0" else "1"
    expected = [
        (2, "nope", "VIN must be 17 characters, got 4"),
        (3, "ALSO-BAD", "VIN must be 17 characters, got 8"),
        # line 4 is blank: skipped, not rejected
        (5, good[:8] + wrong + good[9:], f"VIN check digit is {wrong}, expected {good[8]}"),
        (6, good[:16] + "I", "VIN contains invalid characters: I"),
    ]
    data = b"vin\nnope\nALSO-BAD\n\n" + "".join(f"{v}\n" for _, v, _ in expected[2:]).encode()
    path = write(cli.tmp / "allbad.csv", data)

    result = await cli.submit(path, "--command", "lock_doors", "--batch", batch)

    assert result.code == 1, result
    assert f"batch {batch} (lock_doors): 0 accepted, 4 rejected" in result.output, result
    assert (
        f"error: no valid rows in 'allbad.csv' (4 rejected): batch '{batch}' is closed "
        "without running; its rejections report lists every row"
    ) in result.error, result
    rows = table_rows(result.stdout)
    for line, value, reason in expected:
        assert [str(line), value, *reason.split()] in rows, (line, result)
    assert "Traceback" not in result.stderr, result

    assert cli.stored(batch) == {"batches": 1, "uploads": 1, "items": 0, "rejections": 4}
    assert cli.stored() == cli.stored(batch)
    assert cli.query("SELECT line, value, reason FROM rejections ORDER BY line") == expected
    assert cli.query("SELECT accepted, rejected FROM uploads") == [(0, 4)]
    # Closed at once, as the API closes it: nothing would ever run in it.
    assert cli.query("SELECT status FROM batches") == [("aborted",)]
    assert not await workflow_exists(dev_client, batch)

    report = await cli.run("report", batch, "--rejections")
    assert report.code == 0, report
    reported = list(csv.DictReader(io.StringIO(report.stdout)))
    assert [(int(r["line"]), r["value"], r["reason"]) for r in reported] == expected


# -- the happy path, for contrast -----------------------------------------------


async def test_valid_file(cli: Cli, dev_client: Client) -> None:
    batch = f"cli-ok-{uuid.uuid4()}"
    good = vins(3)
    path = write(cli.tmp / "vins.csv", csv_bytes(good))

    result = await cli.submit(path, "--command", "lock_doors", "--batch", batch)

    assert result.code == 0, result
    assert f"batch {batch} (lock_doors): 3 accepted, 0 rejected" in result.output, result
    assert result.stderr == "", result
    assert cli.stored(batch) == {"batches": 1, "uploads": 1, "items": 3, "rejections": 0}
    items = cli.query(
        "SELECT line, key, payload, status FROM items WHERE batch_id = ? ORDER BY line", batch
    )
    # A VIN's row has nothing but the key: no payload (SQL NULL, not JSON null).
    assert [(line, key, payload) for line, key, payload, _ in items] == [
        (2, good[0], None),
        (3, good[1], None),
        (4, good[2], None),
    ]
    assert {status for *_, status in items} <= set(ItemStatus)
    assert cli.query("SELECT pipeline, label, options FROM batches WHERE id = ?", batch) == [
        ("vehicle", "lock_doors", '{"command": "lock_doors"}')
    ]
    description = await dev_client.get_workflow_handle(batch_workflow_id(batch)).describe()
    assert description.task_queue == cli.env["FLEETBATCH_TEMPORAL_TASK_QUEUE"]


# -- regressions: bugs these tests found, now fixed ----


async def test_error_message_is_not_hard_wrapped(offline_cli: Cli) -> None:
    path = offline_cli.tmp / ("a-rather-long-file-name-" * 4 + ".csv")

    result = await offline_cli.submit(path, "--command", "lock_doors")

    assert result.code == 1, result
    assert result.stderr == f"error: no such file: {path}\n", result


async def test_summary_line_is_not_hard_wrapped(cli: Cli) -> None:
    batch = f"cli-ok-{uuid.uuid4()}"
    path = write(cli.tmp / "vins.csv", csv_bytes(vins(3)))

    result = await cli.submit(path, "--command", "lock_doors", "--batch", batch)

    assert result.code == 0, result
    assert f"batch {batch} (lock_doors): 3 accepted, 0 rejected\n" in result.stdout, result


@pytest.mark.parametrize("where", ["path", "command"])
async def test_error_message_with_brackets(offline_cli: Cli, where: str) -> None:
    if where == "path":
        path = offline_cli.tmp / "[/]missing.csv"
        command = "lock_doors"
        message = f"no such file: {path}"
    else:
        path = write(offline_cli.tmp / "vins.csv", csv_bytes(vins(1)))
        command = "[/]"
        message = f"unknown command '[/]' (known commands: {', '.join(sorted(COMMANDS))})"

    result = await offline_cli.submit(path, "--command", command)

    assert_error(result, message)


async def test_header_with_brackets(cli: Cli) -> None:
    path = write(cli.tmp / "novin.csv", b"[red],b\n1,2\n")

    result = await cli.submit(path, "--command", "lock_doors")

    assert_error(result, "line 1: no 'vin' column in the header (found: [red], b)")
    assert cli.stored() == NOTHING


async def test_rejected_value_with_brackets(cli: Cli, dev_client: Client) -> None:
    batch = new_batch_id()
    path = write(cli.tmp / "vins.csv", csv_bytes([*vins(1), "[/]"]))

    result = await cli.submit(path, "--command", "lock_doors", "--batch", batch)

    # Whatever the output, the batch was stored and started: the exit code must say so.
    assert cli.stored(batch) == {"batches": 1, "uploads": 1, "items": 1, "rejections": 1}
    assert await workflow_exists(dev_client, batch)
    assert result.code == 0, result
    assert "Traceback" not in result.stderr, result
    assert f"batch {batch} (lock_doors): 1 accepted, 1 rejected" in result.output, result
    reason = "VIN must be 17 characters, got 3"
    assert ["3", "[/]", *reason.split()] in table_rows(result.stdout), result


async def test_unknown_namespace_stores_nothing(cli: Cli, dev_client: Client) -> None:
    batch = new_batch_id()
    cli.env["FLEETBATCH_TEMPORAL_NAMESPACE"] = "e2e-no-such-namespace"
    path = write(cli.tmp / "vins.csv", csv_bytes(vins(3)))

    result = await cli.submit(path, "--command", "lock_doors", "--batch", batch)

    assert result.code == 1, result
    assert "Traceback" not in result.stderr, result
    assert result.error.startswith("error: "), result
    assert "e2e-no-such-namespace" in result.error, result
    await assert_nothing_stored(cli, dev_client, batch)


# -- the enrich pipeline ---------------------------------------------------------


def users_bytes(rows: list[tuple[str, str, str]], header: str = "user_id,email,country") -> bytes:
    return (header + "\n" + "".join(",".join(row) + "\n" for row in rows)).encode()


def users(n: int, start: int = 0) -> list[tuple[str, str, str]]:
    return [(f"cli-u{i:04d}", f"user{i}@example.com", "nl") for i in range(start, start + n)]


async def test_enrich_valid_file(cli: Cli, dev_client: Client) -> None:
    batch = new_batch_id()
    good = users(3)
    data = users_bytes(
        [
            good[0],
            ("", "nobody@example.com", "fr"),
            good[1],
            ("cli-bad", "not-an-email", "us"),
            (good[0][0], "again@example.com", "de"),
            (good[2][0], good[2][1], "Nl"),
        ]
    )
    path = write(cli.tmp / "users.csv", data)

    result = await cli.submit(path, "--pipeline", "enrich", "--batch", batch)

    assert result.code == 0, result
    assert f"batch {batch} (enrich): 3 accepted, 3 rejected\n" in result.stdout, result
    assert result.stderr == "", result
    rows = table_rows(result.stdout)
    for line, value, reason in (
        (3, "nobody@example.com", "missing user_id"),
        (5, "cli-bad", "invalid email 'not-an-email'"),
        (6, good[0][0], "duplicate user_id, first seen on line 2"),
    ):
        assert [str(line), value, *reason.split()] in rows, (line, result)
    assert cli.stored(batch) == {"batches": 1, "uploads": 1, "items": 3, "rejections": 3}
    assert cli.query("SELECT pipeline, label, options FROM batches WHERE id = ?", batch) == [
        ("enrich", "enrich", '{"format": "jsonl"}')
    ]
    items = cli.query(
        "SELECT line, key, payload FROM items WHERE batch_id = ? ORDER BY line", batch
    )
    assert items == [
        (2, good[0][0], f'{{"email": "{good[0][1]}", "country": "NL"}}'),
        (4, good[1][0], f'{{"email": "{good[1][1]}", "country": "NL"}}'),
        (7, good[2][0], f'{{"email": "{good[2][1]}", "country": "NL"}}'),
    ]
    description = await dev_client.get_workflow_handle(batch_workflow_id(batch)).describe()
    assert description.task_queue == cli.env["FLEETBATCH_TEMPORAL_TASK_QUEUE"]


async def test_enrich_format_implies_the_pipeline(cli: Cli) -> None:
    batch = new_batch_id()
    path = write(cli.tmp / "users.csv", users_bytes(users(2, 10)))

    result = await cli.submit(path, "--format", "csv", "--batch", batch)

    assert result.code == 0, result
    assert f"batch {batch} (enrich): 2 accepted, 0 rejected\n" in result.stdout, result
    assert cli.query("SELECT pipeline, label, options FROM batches WHERE id = ?", batch) == [
        ("enrich", "enrich", '{"format": "csv"}')
    ]


async def test_vehicle_pipeline_named_explicitly(cli: Cli) -> None:
    batch = new_batch_id()
    path = write(cli.tmp / "vins.csv", csv_bytes(vins(2, 40)))

    result = await cli.submit(
        path, "--pipeline", "vehicle", "--command", "flash_lights", "--batch", batch
    )

    assert result.code == 0, result
    assert f"batch {batch} (flash_lights): 2 accepted, 0 rejected\n" in result.stdout, result
    assert cli.query("SELECT pipeline, label, options FROM batches WHERE id = ?", batch) == [
        ("vehicle", "flash_lights", '{"command": "flash_lights"}')
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--pipeline", "enrch"],
            "unknown pipeline 'enrch'; did you mean 'enrich'? (known: enrich, vehicle)",
        ),
        (["--pipeline", "weather"], "unknown pipeline 'weather' (known: enrich, vehicle)"),
        (
            ["--pipeline", "enrich", "--format", "xml"],
            "unknown output format 'xml': use jsonl or csv",
        ),
        (["--format", "xml"], "unknown output format 'xml': use jsonl or csv"),
        (
            ["--pipeline", "enrich", "--command", "lock_doors"],
            "the enrich pipeline takes no option 'command' (it takes: format)",
        ),
        (
            ["--pipeline", "vehicle"],
            "a new vehicle batch needs the command to send (backoffice_update, flash_lights, "
            "honk_horn, lock_doors, ota_update, unlock_doors)",
        ),
    ],
    ids=["misspelt", "unknown", "bad-format", "format-alone", "command-for-enrich", "no-command"],
)
async def test_pipeline_options_need_no_temporal(
    offline_cli: Cli, args: list[str], message: str
) -> None:
    path = write(offline_cli.tmp / "users.csv", users_bytes(users(2)))

    result = await offline_cli.submit(path, *args)

    assert_error(result, message)
    assert offline_cli.stored() == NOTHING


async def test_enrich_file_without_a_user_id_column(cli: Cli, dev_client: Client) -> None:
    batch = new_batch_id()
    path = write(cli.tmp / "vins.csv", csv_bytes(vins(2)))

    result = await cli.submit(path, "--pipeline", "enrich", "--batch", batch)

    assert_error(result, "line 1: no 'user_id' column in the header (found: vin)")
    await assert_nothing_stored(cli, dev_client, batch)


async def test_enrich_every_row_invalid(cli: Cli, dev_client: Client) -> None:
    batch = new_batch_id()
    data = users_bytes([("", "a@example.com", "de"), ("cli-x", "b@example.com", "Germany")])
    path = write(cli.tmp / "users.csv", data)

    result = await cli.submit(path, "--pipeline", "enrich", "--batch", batch)

    assert result.code == 1, result
    assert f"batch {batch} (enrich): 0 accepted, 2 rejected" in result.output, result
    assert f"error: no valid rows in 'users.csv' (2 rejected): batch '{batch}'" in result.error
    assert cli.stored(batch) == {"batches": 1, "uploads": 1, "items": 0, "rejections": 2}
    assert cli.query("SELECT line, value, reason FROM rejections ORDER BY line") == [
        (2, "a@example.com", "missing user_id"),
        (3, "cli-x", "invalid country 'Germany': expected a two-letter ISO 3166 code"),
    ]
    assert not await workflow_exists(dev_client, batch)


async def test_an_enrich_file_for_a_vehicle_batch(cli: Cli) -> None:
    batch = new_batch_id()
    first = await cli.submit(
        write(cli.tmp / "vins.csv", csv_bytes(vins(2))), "--command", "lock_doors", "-b", batch
    )
    assert first.code == 0, first
    before = cli.dump(batch)

    path = write(cli.tmp / "users.csv", users_bytes(users(2)))
    result = await cli.submit(path, "--pipeline", "enrich", "--batch", batch)

    assert_error(result, f"batch {batch!r} is a vehicle batch, not enrich")
    assert cli.dump(batch) == before


async def test_report_lists_result_files(cli: Cli) -> None:
    batch = new_batch_id()
    path = write(cli.tmp / "users.csv", users_bytes(users(2, 20)))
    assert (await cli.submit(path, "--pipeline", "enrich", "--batch", batch)).code == 0

    none = await cli.run("report", batch, "--files")
    assert none.code == 0, none
    assert none.stdout == "0 result files\n", none

    directory = output_dir(Path(cli.env["FLEETBATCH_DATA_DIR"]), batch)
    first = write_chunk_file(directory, batch, 1, 1, [{"user_id": "cli-u0020"}])
    second = write_chunk_file(directory, batch, 2, 2, [{"user_id": "cli-u0021"}], "csv")
    listed = await cli.run("report", batch, "--files")
    assert listed.code == 0, listed
    assert listed.stdout == (
        f"{first}  {first.stat().st_size:,} bytes\n"
        f"{second}  {second.stat().st_size:,} bytes\n"
        "2 result files\n"
    ), listed

    unknown = await cli.run("report", "no-such-batch", "--files")
    assert_error(unknown, "no batch 'no-such-batch'")
