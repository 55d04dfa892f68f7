"""What every request handler works with: settings, store, Temporal client, auth, templates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi.templating import Jinja2Templates
from temporalio.client import Client

from fleetbatch.api.auth import TokenAuth
from fleetbatch.config import Settings
from fleetbatch.store import Store
from fleetbatch.temporal.links import workflow_url

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
        return workflow_url(self.settings, workflow_id)


def templates() -> Jinja2Templates:
    """The web UI's templates."""
    return Jinja2Templates(directory=str(HERE / "templates"))
