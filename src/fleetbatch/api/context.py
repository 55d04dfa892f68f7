"""What every request handler works with: settings, store, Temporal client, auth,
templates, live event streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi.templating import Jinja2Templates
from temporalio.client import Client

from fleetbatch.api import display
from fleetbatch.api.auth import TokenAuth
from fleetbatch.api.broadcast import EventHub
from fleetbatch.config import Settings
from fleetbatch.domain import format_duration
from fleetbatch.services.progress import Snapshot, snapshot
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
    events: EventHub = field(init=False)
    """The live progress streams: one broadcaster per watched batch."""

    def __post_init__(self) -> None:
        self.events = EventHub(
            self.progress,
            per_caller=self.settings.api_events_per_token,
            total=self.settings.api_events_total,
        )

    async def progress(self, batch_id: str) -> Snapshot:
        """The batch's snapshot (a Temporal query while it runs)."""
        return await snapshot(self.client, self.store, batch_id)

    def temporal_url(self, workflow_id: str | None) -> str | None:
        """A workflow's page in the Temporal Web UI, when one is known."""
        return workflow_url(self.settings, workflow_id)


def templates() -> Jinja2Templates:
    """The web UI's templates, with the filters of ``display`` and ``duration``."""
    found = Jinja2Templates(directory=str(HERE / "templates"))
    found.env.filters.update(
        utc=display.utc, iso=display.iso, per_minute=display.per_minute, duration=format_duration
    )
    found.env.globals["segments"] = display.segments
    return found
