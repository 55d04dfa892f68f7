"""``fleetbatch item``: one item with every attempt of its command."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated

import typer

from fleetbatch.api.schemas import ItemHistoryPublic
from fleetbatch.cli.common import console, print_table, run, settings
from fleetbatch.pipelines import get_pipeline
from fleetbatch.services.items import item_history
from fleetbatch.stack import open_store
from fleetbatch.temporal.links import workflow_url


def _time(stamp: datetime | None) -> str:
    return "-" if stamp is None else f"{stamp:%Y-%m-%d %H:%M:%S}.{stamp.microsecond // 1000:03d}"


def _show(item: ItemHistoryPublic, key_name: str) -> None:
    say = console.print
    say(f"batch {item.batch_id} · {key_name} {item.key} · line {item.line}", highlight=False)
    say(f"status:         {item.status}", highlight=False)
    say(f"outcome:        {item.outcome or 'none yet'}", highlight=False)
    say(f"effect id:      {item.effect_id}", highlight=False)
    say(f"updated:        {_time(item.updated_at)} UTC", highlight=False)
    if item.workflow_id:
        say(f"chunk workflow: {item.workflow_id}", highlight=False)
    if item.temporal_url:
        say(f"in Temporal:    {item.temporal_url}", highlight=False)
    if not item.attempts:
        say("attempts:       none (nothing was published for it)", highlight=False)
        return
    print_table(
        ("attempt", "effect id", "published (UTC)", "answered (UTC)", "outcome"),
        (
            (
                str(a.attempt),
                a.effect_id,
                _time(a.published_at),
                _time(a.answered_at),
                a.outcome or "waiting for its answer",
            )
            for a in item.attempts
        ),
    )


def item(
    batch: Annotated[str, typer.Argument(help="batch id")],
    key: Annotated[str, typer.Argument(help="the item's key: a VIN (any case), a user id")],
    json_: Annotated[
        bool, typer.Option("--json", help="print the item as JSON (shape in the README)")
    ] = False,
) -> None:
    """One item: its status, every attempt (published, effect id, answer, UTC times),
    its final outcome and its chunk workflow in the Temporal Web UI."""

    async def main() -> None:
        s = settings()
        async with open_store(s) as store:
            history = await item_history(store, batch, key)
            pipeline = get_pipeline((await store.batches.get(batch)).pipeline)
        found = ItemHistoryPublic.of(history, workflow_url(s, history.item["workflow_id"]))
        if json_:
            sys.stdout.write(found.model_dump_json(indent=2) + "\n")
            sys.stdout.flush()
        else:
            _show(found, pipeline.key_name)

    run(main())


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.command()(item)
