"""API fixtures: the app over a test harness (real store, worker, simulators) on the
dev server, called in-process through httpx's ASGI transport."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from fleetbatch.api import create_app
from fleetbatch.pipelines.enrich.service import EnrichmentSimulatorConfig
from fleetbatch.pipelines.vehicle.vin import make_vin
from support import Harness, csv_bytes, harness

VIEWER = "viewer-token-4f1c2a9e7b"
OPERATOR = "operator-token-8d3e6b1f0a"

ENRICHMENT = EnrichmentSimulatorConfig(latency_ms=0, latency_jitter_ms=0, failure_rate=0.0, seed=11)
"""An enrichment simulator that answers every call at once: enrich batches complete."""


@dataclass
class Api:
    http: httpx.AsyncClient
    h: Harness

    async def upload(
        self, data: bytes | list[str], filename: str = "vins.csv", **fields: Any
    ) -> httpx.Response:
        body = data if isinstance(data, bytes) else csv_bytes(data)
        if fields.get("pipeline", "vehicle") == "vehicle":
            fields.setdefault("command", "lock_doors")
        return await self.http.post(
            "/api/batches",
            files={"file": (filename, body, "text/csv")},
            data={k: str(v) for k, v in fields.items() if v is not None},
            headers=auth(OPERATOR),
        )

    async def get(self, url: str, token: str = VIEWER, **kwargs: Any) -> httpx.Response:
        return await self.http.get(url, headers=auth(token), **kwargs)

    async def post(self, url: str, token: str = OPERATOR, **kwargs: Any) -> httpx.Response:
        return await self.http.post(url, headers=auth(token), **kwargs)


def users_csv(rows: list[tuple[str, str, str]], header: str = "user_id,email,country") -> bytes:
    """A users file for the enrich pipeline: ``(user_id, email, country)`` per row."""
    return (header + "\n" + "".join(",".join(row) + "\n" for row in rows)).encode()


def api_users(n: int, start: int = 0) -> list[tuple[str, str, str]]:
    """``n`` distinct valid users, ids of a prefix no other test uses."""
    return [(f"api-u{i:04d}", f"user{i}@example.com", "de") for i in range(start, start + n)]


def api_vins(n: int, start: int = 0) -> list[str]:
    """``n`` distinct valid VINs of a maker no other test uses: these tests share the
    dev server, whose visibility other tests search by VIN."""
    return [make_vin(i, wmi="5WB", vds="UXAPT") for i in range(start, start + n)]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ApiFactory = Callable[..., contextlib.AbstractAsyncContextManager[Api]]


@pytest.fixture
def api_factory(dev_client: Client, tmp_path: Path) -> ApiFactory:
    """``async with api_factory(**harness_and_settings) as api``: an app with a viewer
    and an operator token over its own harness."""

    @contextlib.asynccontextmanager
    async def make(**settings: Any) -> AsyncIterator[Api]:
        settings.setdefault("api_viewer_tokens", [VIEWER])
        settings.setdefault("api_operator_tokens", [OPERATOR])
        async with harness(dev_client, tmp_path, **settings) as h:
            app = create_app(h.settings, store=h.store, client=h.client)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                yield Api(http, h)

    return make


@pytest.fixture
async def api(api_factory: ApiFactory) -> AsyncIterator[Api]:
    async with api_factory() as made:
        yield made


# The documented shape of an item's history (the API's and `fleetbatch item --json`'s).
ITEM_FIELDS = {
    "batch_id",
    "key",
    "line",
    "status",
    "outcome",
    "error",
    "effect_id",
    "result",
    "updated_at",
    "workflow_id",
    "temporal_url",
    "attempts",
}
ATTEMPT_FIELDS = {"attempt", "effect_id", "published_at", "answered_at", "outcome"}
