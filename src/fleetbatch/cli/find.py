"""``fleetbatch find KEY``: the Temporal visibility query and Web UI link of the
chunk workflows that listed an item key (a VIN) in their search attribute.

With a hash secret configured the attribute holds keyed hashes, not keys, so the
query is computed here, where the secret is; nobody can build it from a VIN
without the secret.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from fleetbatch.cli.common import console, settings
from fleetbatch.config import Settings
from fleetbatch.workflows import search_attributes as sa


def visibility_query(s: Settings, key: str) -> str:
    """The visibility query that finds the chunk workflows listing ``key``."""
    hasher = s.key_hasher
    value = key if hasher is None else hasher.hash(key)
    return f"{sa.KEYS.name} = '{value}'"


def web_ui_link(s: Settings, query: str) -> str | None:
    """The Temporal Web UI's workflow list filtered by ``query``, when the UI is known."""
    base = s.temporal_web_url
    if not base:
        return None
    namespace = quote(s.temporal_namespace, safe="")
    return f"{base.rstrip('/')}/namespaces/{namespace}/workflows?query={quote(query, safe='')}"


def find(
    key: Annotated[str, typer.Argument(help="a VIN (or another pipeline's item key)")],
    exact: Annotated[
        bool, typer.Option(help="take the key as given (not trimmed and upper-cased as a VIN)")
    ] = False,
) -> None:
    """Print the Temporal visibility query and Web UI link for an item key's workflows."""
    s = settings()
    key = key if exact else key.strip().upper()
    query = visibility_query(s, key)
    console.print(f"query:  {query}", highlight=False, markup=False)
    link = web_ui_link(s, query)
    if link:
        console.print(f"web UI: {link}", highlight=False, markup=False)
    console.print(
        f'temporal workflow list --namespace {s.temporal_namespace} --query "{query}"',
        highlight=False,
        markup=False,
    )
    if s.search_keys_max:
        note = f"chunks of at most {s.search_keys_max} items list their keys"
    else:
        note = "no chunk lists its keys (FLEETBATCH_SEARCH_KEYS_MAX=0)"
    console.print(f"({note}; larger chunks are found by item in the store)", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``find`` to the CLI."""
    app.command()(find)
