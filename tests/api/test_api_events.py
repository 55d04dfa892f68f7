"""Live progress as server-sent events, and health and readiness."""

from __future__ import annotations

import json

from temporalio.client import Client

from api_support import Api, api_vins
from fleetbatch.api import create_app
from fleetbatch.store import Store
from fleetbatch.store.db import create_engine


def _events(text: str) -> list[tuple[str, dict[str, object]]]:
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return found


async def test_events_follow_a_batch_to_its_end(api: Api) -> None:
    assert (await api.upload(api_vins(30), batch_id="b-ev", chunk_size=5)).status_code == 201
    response = await api.get("/api/batches/b-ev/events", params={"interval": 0.2})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert events[-1] == ("end", {})
    progress = [data for name, data in events[:-1]]
    assert {name for name, _ in events[:-1]} == {"progress"}
    done = [p["done"] for p in progress]
    assert done == sorted(done)
    assert progress[-1]["finished"] is True and progress[-1]["percent"] == 100.0
    assert progress[-1]["phase"] == "completed"
    assert progress[-1]["counts"]["succeeded"] == 30
    # Only the last event has the store's final status.
    assert all(p["phase"] != "completed" for p in progress[:-1])


async def test_event_interval_is_checked(api: Api) -> None:
    response = await api.get("/api/batches/x/events", params={"interval": 0})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "query 'interval': Input should be greater than or equal to 0.2"
    }


async def test_ready_when_database_and_temporal_answer(api: Api) -> None:
    response = await api.http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "temporal": "ok"},
    }


async def test_not_ready_without_a_database(api: Api, dev_client: Client) -> None:
    gone = Store(create_engine("postgresql://127.0.0.1:1/none"))
    app = create_app(api.h.settings, store=gone, client=dev_client)
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/readyz")
    await gone.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["temporal"] == "ok"
    assert body["checks"]["database"] != "ok" and body["checks"]["database"]
