"""The production shape's commands: the responder and simulator processes, the
dead-letter store, orphan responses and the exactly-once audit."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer

from fleetbatch import processes
from fleetbatch.cli.common import (
    console,
    errors,
    fail,
    print_table,
    run,
    settings,
    stop_on_signals,
)
from fleetbatch.config import Settings
from fleetbatch.pipelines.enrich.service import EnrichmentSimulator
from fleetbatch.pipelines.vehicle.simulators.domain import read_journal
from fleetbatch.services.audit import audit as audit_batches
from fleetbatch.services.dead_letters import replay_dead_letters
from fleetbatch.stack import enrichment_simulator_config, open_bus, open_store
from fleetbatch.telemetry import setup_logging

simulate_app = typer.Typer(
    help="Run a simulator as a process of its own (domain and consent over NATS; "
    "enrichment over HTTP)."
)
dlq_app = typer.Typer(help="Messages the bus gave up on: list them, publish them again.")


def _serve(process: Callable[..., Awaitable[None]], name: str) -> None:
    setup_logging(logging.INFO)

    async def main() -> None:
        s = settings()
        if not s.nats:
            fail(f"`{name}` runs over NATS: set FLEETBATCH_BUS=nats://…")
        await process(s, stop_on_signals())
        console.print(f"{name} stopped cleanly")

    run(main())


def responder() -> None:
    """Turn domain responses on the bus into grouped workflow signals (SIGTERM stops)."""
    _serve(processes.run_responder, "responder")


@simulate_app.command("domain")
def simulate_domain() -> None:
    """Execute commands from the bus like a domain would (FLEETBATCH_SIM_* settings).

    Set FLEETBATCH_SIM_JOURNAL to keep its executions across restarts for `audit`.
    """
    _serve(processes.run_domain_simulator, "domain simulator")


@simulate_app.command("enrichment")
def simulate_enrichment(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8090,
    log_file: Annotated[Path | None, typer.Option(help="append each call here (NDJSON)")] = None,
) -> None:
    """Serve the enrichment API over HTTP like a flaky real one would
    (FLEETBATCH_ENRICH_SIM_* settings: failure, 429 and timeout rates, latency).

    Workers reach it with FLEETBATCH_ENRICH_URL=http://HOST:PORT.
    """
    setup_logging(logging.INFO)

    async def main() -> None:
        s = settings()
        stop = stop_on_signals()
        simulator = EnrichmentSimulator(
            enrichment_simulator_config(s), host=host, port=port, log_file=log_file
        )
        async with simulator:
            console.print(f"enrichment simulator at {simulator.url}")
            await stop.wait()
        console.print("enrichment simulator stopped cleanly")

    run(main())


@simulate_app.command("consent")
def simulate_consent() -> None:
    """Answer consent questions from workers over the bus."""
    _serve(processes.run_consent_simulator, "consent simulator")


PAYLOAD_PREVIEW = 80
"""Bytes of a dead letter's payload that ``dlq list`` shows."""


def _preview(payload: bytes) -> str:
    text = payload[:PAYLOAD_PREVIEW].decode(errors="replace")
    return text + "…" if len(payload) > PAYLOAD_PREVIEW else text


def _store_command(act: Callable[[Settings], Awaitable[int | None]]) -> None:
    async def main() -> int | None:
        return await act(settings())

    run(main())


@dlq_app.command("list")
def dlq_list(
    all_: Annotated[bool, typer.Option("--all", help="replayed ones too")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """Show dead letters, oldest first."""

    async def act(s: Settings) -> None:
        async with open_store(s) as store:
            letters = await store.dead_letters.list(include_replayed=all_, limit=limit)
        print_table(
            ("id", "subject", "deliveries", "error", "dead since", "replayed", "payload"),
            [
                (
                    str(d.id),
                    d.subject,
                    str(d.deliveries),
                    d.error,
                    f"{d.created_at:%Y-%m-%d %H:%M:%S}",
                    "-" if d.replayed_at is None else f"{d.replayed_at:%Y-%m-%d %H:%M:%S}",
                    _preview(d.payload),
                )
                for d in letters
            ],
        )
        console.print(f"{len(letters)} dead letters")

    _store_command(act)


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="dead letter ids; none means all")] = None,
) -> None:
    """Publish dead letters again to their subject (after fixing what failed them)."""

    async def act(s: Settings) -> int:
        async with open_store(s) as store, open_bus(s, store) as bus:
            letters = await replay_dead_letters(store, bus, ids or [])
        for d in letters:
            console.print(f"replayed {d.id} to {d.subject}", highlight=False)
        missing = sorted(set(ids or ()) - {d.id for d in letters})
        if missing:
            errors.print(f"not found or already replayed: {', '.join(map(str, missing))}")
            return 1
        console.print(f"{len(letters)} replayed")
        return 0

    _store_command(act)


def orphans(
    batch: Annotated[str | None, typer.Option("--batch", "-b", help="of this batch")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """Show domain responses that arrived after their chunk workflow was gone or finished."""

    async def act(s: Settings) -> None:
        async with open_store(s) as store:
            rows = await store.orphans.list(batch, limit)
        print_table(
            ("received", "batch", "key", "effect id", "ok", "error", "workflow"),
            [
                (
                    "" if o.received_at is None else f"{o.received_at:%Y-%m-%d %H:%M:%S}",
                    o.batch_id,
                    o.item_key,
                    o.effect_id,
                    "yes" if o.ok else "no",
                    o.error or "",
                    o.workflow_id,
                )
                for o in rows
            ],
        )
        console.print(f"{len(rows)} orphan responses")

    _store_command(act)


def audit(
    batches: Annotated[list[str], typer.Argument(help="batch ids")],
    journal: Annotated[Path, typer.Option(help="the domain simulator's journal file")],
) -> None:
    """Check exactly-once effects: the domain's journal against the batches' items."""

    async def act(s: Settings) -> int:
        if not journal.is_file():
            fail(f"no such journal: {journal}")
        async with open_store(s) as store:
            report = await audit_batches(store, batches, read_journal(journal))
        console.print(f"{report.items:,} items, {report.executions:,} executions")
        for label, found in (
            ("executed more than once", report.executed_twice),
            ("succeeded but never executed", report.succeeded_not_executed),
            ("executed but not recorded succeeded", report.executed_not_succeeded),
            ("not terminal", report.not_terminal),
        ):
            shown = ", ".join(found[:10]) + (" …" if len(found) > 10 else "")
            console.print(f"{label}: {len(found):,}" + (f" ({shown})" if found else ""))
        console.print("audit: [green]agree[/]" if report.ok else "audit: [red]disagree[/]")
        return 0 if report.ok else 1

    _store_command(act)


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    for command in (responder, orphans, audit):
        app.command()(command)
    app.add_typer(simulate_app, name="simulate")
    app.add_typer(dlq_app, name="dlq")
