"""What every request handler works with: settings, store, Temporal client, auth, templates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi.templating import Jinja2Templates
from temporalio.client import Client

from fleetbatch.api import display
from fleetbatch.api.auth import TokenAuth
from fleetbatch.config import Settings
from fleetbatch.domain import format_duration
from fleetbatch.store import Store

HERE = Path(__file__).parent


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    client: Client
    auth: TokenAuth
    templates: Jinja2Templates

    def temporal_url(self, workflow_id: str | None) -> str | None:
        """A workflow's page in the Temporal Web UI, when one is known."""
        base = self.settings.temporal_web_url
        if not base or not workflow_id:
            return None
        namespace = quote(self.settings.temporal_namespace, safe="")
        return f"{base.rstrip('/')}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"


def templates() -> Jinja2Templates:
    """The web UI's templates, with the filters of ``display`` and ``duration``."""
    found = Jinja2Templates(directory=str(HERE / "templates"))
    found.env.filters.update(utc=display.utc, iso=display.iso, duration=format_duration)
    found.env.globals["segments"] = display.segments
    return found
