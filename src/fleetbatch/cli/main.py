"""``fleetbatch``: run the stack, submit files, watch batches, get reports."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fleetbatch.cli import control, find, listing, processes, report, rollout
from fleetbatch.cli import items as item_commands
from fleetbatch.cli.common import console, fail, run, settings, stop_on_signals
from fleetbatch.cli.demo import demo_file, demo_users_file
from fleetbatch.cli.progress import exit_code, watch, watch_json
from fleetbatch.config import CommandSettings, Settings
from fleetbatch.domain import TERMINAL
from fleetbatch.domain.rollout import Rollout
from fleetbatch.errors import FleetbatchError, NoValidRowsError
from fleetbatch.pipelines import get_pipeline
from fleetbatch.pipelines.vehicle.commands import get_command
from fleetbatch.services.submission import rollout_for, submit_file
from fleetbatch.stack import open_store, run_stack, temporal_client
from fleetbatch.store import UploadResult
from fleetbatch.telemetry import setup_logging

app = typer.Typer(
    help="Send a command to every vehicle of a file, durably, on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


async def _until_stopped() -> None:
    await stop_on_signals().wait()


@app.command()
def dev(
    api: Annotated[bool, typer.Option("--api/--no-api", help="serve the web UI and API")] = True,
) -> None:
    """Run the whole stack in one process: dev server, worker, simulators, responder, API."""
    setup_logging(logging.INFO)

    from fleetbatch.api import create_app
    from fleetbatch.api.server import running_api

    async def main() -> None:
        s = settings()
        async with run_stack(s) as stack, contextlib.AsyncExitStack() as served:
            console.print(f"fleetbatch dev running; Temporal at {s.effective_temporal_address}")
            if stack.ui_url:
                console.print(f"Temporal Web UI: {stack.ui_url}")
            if api:
                web = create_app(s, store=stack.store, client=stack.client)
                url = await served.enter_async_context(running_api(web, s.api_host, s.api_port))
                console.print(f"fleetbatch web UI and API: {url}  (OpenAPI: {url}/docs)")
            console.print("submit with `fleetbatch submit FILE --command NAME`; Ctrl+C stops")
            await _until_stopped()
        console.print("stopped cleanly")

    run(main())


@app.command("api")
def api_command(
    host: Annotated[str | None, typer.Option(help="listen address (FLEETBATCH_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (FLEETBATCH_API_PORT)")] = None,
) -> None:
    """Serve the HTTP API and web UI against the configured Temporal and database."""
    from fleetbatch.api import create_app
    from fleetbatch.api.server import running_api

    setup_logging(logging.INFO)

    async def main() -> None:
        s = settings()
        web = create_app(s)
        async with running_api(
            web, host or s.api_host, s.api_port if port is None else port
        ) as url:
            console.print(f"fleetbatch API at {url}  (OpenAPI: {url}/docs)", highlight=False)
            await _until_stopped()

    run(main())


@app.command()
def worker() -> None:
    """Run a worker (workflows and activities; no dev server). Run as many as you like.

    With FLEETBATCH_BUS=nats://… it publishes to NATS and asks consent over it; the
    responder and the simulators (or the real services) are processes of their own.
    With the in-process bus it runs the simulators and the responder itself.

    Started before Temporal, the database or NATS answers, it waits for each (one
    log line per attempt). Its state is in FLEETBATCH_WORKER_HEALTH_FILE
    (<data dir>/worker-health.json): starting, waiting, ready or stopping, rewritten
    every 10 s while it runs.
    """
    from fleetbatch.startup import HealthFile

    setup_logging(logging.INFO)

    async def main() -> None:
        s = settings()
        async with (
            HealthFile(s.effective_worker_health_file) as health,
            run_stack(
                s, start_embedded=False, services=not s.nats, on_waiting=health.waiting
            ) as stack,
        ):
            workers = stack.workers or []
            health.ready(alive=lambda: all(w.is_running for w in workers))
            console.print(
                f"worker polling {s.temporal_task_queue!r} at {s.effective_temporal_address}"
                f" (bus: {'NATS' if s.nats else 'in-process'})"
            )
            await _until_stopped()
            health.set("stopping")
        console.print("worker stopped cleanly")

    run(main())


def _print_upload(result: UploadResult, limit: int = 20) -> None:
    console.print(
        f"batch [bold]{escape(result.batch_id)}[/] ({escape(result.label)}): "
        f"{result.accepted:,} accepted, {result.rejected:,} rejected"
    )
    if result.rejections:
        table = Table("line", "value", "reason", title="rejected rows")
        for r in result.rejections[:limit]:
            table.add_row(str(r.line), Text(r.value), Text(r.reason))
        console.print(table)
        if result.rejected > limit:
            more = result.rejected - limit
            console.print(f"… {more:,} more: `fleetbatch report {result.batch_id} --rejections`")


async def _submit(
    s: Settings,
    path: Path,
    pipeline: str | None,
    options: dict[str, str | None],
    batch: str | None,
    chunk_size: int | None,
    max_in_flight: int | None,
    priority: float | None,
    max_failures: str | None,
    rollout: Rollout | None = None,
) -> UploadResult:
    async with temporal_client(s, start_embedded=False) as client, open_store(s) as store:
        with path.open("rb") as stream:
            return await submit_file(
                store,
                client,
                s,
                stream,
                filename=path.name,
                pipeline=pipeline,
                options=options,
                batch_id=batch,
                chunk_size=chunk_size,
                max_in_flight=max_in_flight,
                priority=priority,
                max_failures=max_failures,
                rollout=rollout,
            )


@app.command()
def submit(
    file: Annotated[
        Path, typer.Argument(help="CSV or NDJSON: a 'vin' per row, or users for --pipeline enrich")
    ],
    command: Annotated[
        str | None, typer.Option("--command", "-c", help="vehicle command to send")
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option("--pipeline", "-p", help="vehicle (the default) or enrich"),
    ] = None,
    output_format: Annotated[
        str | None, typer.Option("--format", help="enrich: result files as jsonl or csv")
    ] = None,
    batch: Annotated[str | None, typer.Option("--batch", "-b", help="add to this batch")] = None,
    chunk_size: Annotated[int | None, typer.Option(min=1, max=5000)] = None,
    max_in_flight: Annotated[int | None, typer.Option(min=1, max=1000)] = None,
    priority: Annotated[
        float | None,
        typer.Option(help="share of the command's rate against other batches (weight, default 1)"),
    ] = None,
    max_failures: Annotated[
        str | None, typer.Option(help="abort past this many failed items: '5%' or '100'")
    ] = None,
    waves: Annotated[
        str | None,
        typer.Option(help="roll out in waves: '1%,10%,100%', '50,500,all' or '50x2' (exponential)"),
    ] = None,
    gate_failures: Annotated[
        str | None,
        typer.Option(help="a wave's gate: at most this share ('5%') or count of it may fail"),
    ] = None,
    gate_min_items: Annotated[
        int | None, typer.Option(min=0, help="the gate judges once this many items executed")
    ] = None,
    approve_waves: Annotated[
        bool, typer.Option(help="every wave after the first waits for `fleetbatch approve`")
    ] = False,
    on_gate_failure: Annotated[
        str | None, typer.Option(help="pause (the default) or abort when a gate fails")
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            help="POST signed notices here, with or without waves: a wave waits, a gate "
            "fails, the breaker opens or closes, the batch ends"
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="a named rollout policy ('cautious-ota', 'careful', 'all-at-once' or one "
            "configured); the options given override its own"
        ),
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option(help="start no chunk before this ISO 8601 time ('2026-12-24T01:00+01:00')"),
    ] = None,
    end_at: Annotated[
        str | None, typer.Option(help="at this ISO 8601 time the batch pauses (or --on-end)")
    ] = None,
    on_end: Annotated[
        str | None, typer.Option(help="pause (the default) or cancel at the end time")
    ] = None,
    window: Annotated[
        list[str] | None,
        typer.Option(
            help="run only inside this maintenance window (repeatable): "
            "'01:00-05:00 Europe/Berlin', 'sat,sun 22:00-06:00 UTC' or '0 1 * * 1-5 4h UTC'"
        ),
    ] = None,
    ramp: Annotated[
        str | None,
        typer.Option(
            help="the batch's own rate, ramping up: 'base=60/min,factor=2,after=100,max=600/min'"
            " (after=N notified items, or succeeded=N)"
        ),
    ] = None,
    overshoot: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="with --max-failures or a gate: at most this many commands past what the "
            "rule tolerates can be out when it trips",
        ),
    ] = None,
) -> None:
    """Validate and store a file's items and start (or extend) the batch."""
    if not file.is_file():
        fail(f"no such file: {file}")
    s = settings()
    if pipeline is None and output_format is not None:
        pipeline = "enrich"
    options = {"command": command, "format": output_format}
    try:
        if pipeline is not None:
            kind = get_pipeline(pipeline)
            if batch is None:
                kind.options({k: v for k, v in options.items() if v is not None}, s)
        elif command is not None:
            get_command(command, s.command_types)
        staged = rollout_for(
            s,
            policy=policy,
            waves=waves,
            start_at=start_at,
            end_at=end_at,
            windows=window,
            on_end=on_end,
            gate_failures=gate_failures,
            gate_min_items=gate_min_items,
            approve_waves=approve_waves,
            on_gate_failure=on_gate_failure,
            webhook_url=webhook,
            ramp=ramp,
            overshoot=overshoot,
            max_failures=max_failures,
        )
    except FleetbatchError as exc:
        fail(str(exc))

    async def main() -> int:
        try:
            result = await _submit(
                s,
                file,
                pipeline,
                options,
                batch,
                chunk_size,
                max_in_flight,
                priority,
                max_failures,
                staged,
            )
        except NoValidRowsError as exc:  # the API's 422: the rows, then the error
            _print_upload(exc.result)
            raise
        _print_upload(result)
        console.print(f"follow it with `fleetbatch status {result.batch_id}`")
        return 0

    run(main())


@app.command()
def status(
    batch: Annotated[str, typer.Argument(help="batch id")],
    watch_: Annotated[
        bool,
        typer.Option("--watch/--once", help="follow until it finishes or is paused, or print once"),
    ] = True,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="follow through pauses until it finishes")
    ] = False,
    json_: Annotated[
        bool,
        typer.Option(
            "--json", help="print one JSON snapshot (with --follow: one per line until it ends)"
        ),
    ] = False,
) -> None:
    """Show a batch's progress: counts by status, rate, ETA.

    Follows a running batch until it finishes; a paused one is shown as paused and the
    command returns, unless --follow keeps following it until it finishes. On a
    terminal a live bar; in a pipe or a file plain lines.

    Exit codes:
      0  completed, or not finished yet (--once, a paused batch)
      1  error: no such batch, Temporal unreachable, bad settings
      2  usage error
      3  aborted: more failed items than --max-failures tolerates
      4  cancelled
      5  failed: its workflow failed, was terminated or timed out, or never started
    """
    if follow and not watch_:
        fail("--follow and --once contradict each other: choose one")

    async def main() -> int:
        s = settings()
        async with temporal_client(s, start_embedded=False) as client, open_store(s) as store:
            if json_:
                snap = await watch_json(client, store, batch, follow=follow)
            else:
                snap = await watch(
                    client,
                    store,
                    batch,
                    follow=watch_,
                    through_pauses=follow,
                    tty=console.is_terminal,
                )
        return exit_code(snap)

    run(main())


@app.command()
def demo(
    items: Annotated[int, typer.Option(min=1, help="items in the generated file")] = 3000,
    chunk_size: Annotated[int, typer.Option(min=1, max=5000)] = 100,
    command: Annotated[str, typer.Option(help="vehicle command to send")] = "lock_doors",
    pipeline: Annotated[
        str, typer.Option("--pipeline", "-p", help="vehicle (VINs) or enrich (users)")
    ] = "vehicle",
) -> None:
    """Generate a file, run it through the embedded stack, show it finish."""
    # Failed items are the demo's summary and report, not a log line each.
    setup_logging(logging.ERROR)

    async def main() -> int:
        # The demo shows throughput: its command runs without the type's rate limit.
        base = settings()
        unlimited = {command: CommandSettings(rate="off")} if command in base.command_types else {}
        s = base.model_copy(
            update={"idle_close_after_seconds": 2.0, "commands": {**base.commands, **unlimited}}
        )
        async with run_stack(s) as stack:
            with tempfile.TemporaryDirectory() as tmp:
                if pipeline == "enrich":
                    path = demo_users_file(Path(tmp) / "demo-users.csv", items)
                    options = {}
                else:
                    path = demo_file(Path(tmp) / "demo-vins.csv", items)
                    options = {"command": command}
                console.print(f"generated {path.name}: {items:,} items plus a few bad rows")
                with path.open("rb") as stream:
                    result = await submit_file(
                        stack.store,
                        stack.client,
                        s,
                        stream,
                        filename=path.name,
                        pipeline=pipeline,
                        options=options,
                        chunk_size=chunk_size,
                    )
            _print_upload(result, limit=5)
            if stack.ui_url:
                console.print(f"Temporal Web UI: {stack.ui_url}")
            snap = await watch(stack.client, stack.store, result.batch_id, tty=console.is_terminal)
            counts = await stack.store.items.counts(result.batch_id)
            terminal = sum(counts[t] for t in TERMINAL)
            console.print(
                f"[bold]summary[/]: {terminal:,} of {result.accepted:,} items terminal "
                f"({', '.join(f'{k} {v:,}' for k, v in counts.items() if v)}); phase {snap.phase}"
            )
            console.print(f"report: `fleetbatch report {result.batch_id}`")
            return 0 if terminal == result.accepted else 1

    run(main())


@app.command()
def bench(
    items: Annotated[
        int | None, typer.Option(min=1, help="VINs per configuration (overrides every default)")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="run this configuration (repeatable)")
    ] = None,
    max_in_flight: Annotated[
        int | None, typer.Option(min=1, max=1000, help="chunks at once (20; 600 with --batcher)")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    batcher: Annotated[
        bool,
        typer.Option(
            "--batcher",
            help="instead: 2,000 per-VIN workflows recording outcomes directly, then "
            "through 1, 2 and 4 write batchers; counts the database's outcome writes",
        ),
    ] = False,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="instead: hold a command type to this many items/s with two workers and "
            "two batches (weights 1 and 3) for --seconds, then double it",
        ),
    ] = None,
    seconds: Annotated[float, typer.Option(min=10, help="measured window of --rate-limit")] = 60,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="items per chunk workflow of --rate-limit")
    ] = 10,
    upload_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="instead: upload one file of this many rows through `fleetbatch api` and "
            "report its time and the API's peak memory",
        ),
    ] = None,
    intake_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="instead: store one file of this many rows straight into the store (--db), "
            "then again into the same batch (every row a duplicate); no API, no Temporal",
        ),
    ] = None,
    bus: Annotated[
        str, typer.Option(help="memory, or nats (FLEETBATCH_BUS or nats://127.0.0.1:4222)")
    ] = "memory",
    db: Annotated[
        str,
        typer.Option(
            help="sqlite, or postgresql (a fresh database per configuration, made from "
            "FLEETBATCH_DATABASE_URL or postgresql://127.0.0.1:5432/test)"
        ),
    ] = "sqlite",
) -> None:
    """Measure throughput: per-VIN reference vs chunk sizes, each on a fresh dev server.

    The benchmark is not part of the product package: it is fleetbatch_bench
    (bench/ in the repository), imported only when this command runs.
    """
    try:
        from fleetbatch_bench import cli as bench_cli
    except ModuleNotFoundError as exc:
        if exc.name != "fleetbatch_bench":
            raise
        fail(
            "fleetbatch bench needs the benchmark package fleetbatch_bench (bench/ in the "
            "fleetbatch repository), which is not installed: pip install -e . from a checkout"
        )
    bench_cli.main(
        items=items,
        only=only or (),
        max_in_flight=max_in_flight,
        json_=json_,
        batcher=batcher,
        rate_limit=rate_limit,
        seconds=seconds,
        chunk_size=chunk_size,
        upload_rows=upload_rows,
        intake_rows=intake_rows,
        bus=bus,
        db=db,
    )


control.register(app)
rollout.register(app)
listing.register(app)
report.register(app)
processes.register(app)
item_commands.register(app)
find.register(app)


def main() -> None:
    """The ``fleetbatch`` script: run the command, then leave without the interpreter's
    finalization.

    The Temporal client's Rust bridge keeps threads of its own that can outlive the
    event loop; when one of them takes the GIL while CPython finalizes, the process
    dies with SIGSEGV or SIGABRT after its work is done (seen under the chaos run's
    load; the same race is reported against other pyo3/tokio bridges). Everything
    the command wrote is flushed first, so ``os._exit`` loses nothing.
    """
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # sys.exit("message") prints it and exits 1
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nobody reads it
            stream.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    main()
