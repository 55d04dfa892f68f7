"""Live progress as server-sent events, and health and readiness."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api_support import OPERATOR, VIEWER, Api, ApiFactory, api_vins
from fleetbatch.api import context as context_module
from fleetbatch.api import create_app
from fleetbatch.api.context import ApiContext
from fleetbatch.services.progress import Snapshot
from fleetbatch.store import Store
from fleetbatch.store.db import create_engine


def api_context(api: Api) -> ApiContext:
    transport = api.http._transport
    context: ApiContext = transport.app.state.context  # type: ignore[attr-defined]
    return context


def _events(text: str) -> list[tuple[str, dict[str, object]]]:
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        if "event" in lines:  # not the stream's opening ``retry:``
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


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the progress snapshots the API takes (each a Temporal query while a batch
    runs)."""
    calls: list[str] = []
    real = context_module.snapshot

    async def counted(client: Client, store: Store, batch_id: str) -> Snapshot:
        calls.append(batch_id)
        return await real(client, store, batch_id)

    monkeypatch.setattr(context_module, "snapshot", counted)
    return calls


async def test_subscribers_of_a_batch_share_its_snapshots(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting(monkeypatch)
    assert (await api.upload(api_vins(30), batch_id="b-share", chunk_size=5)).status_code == 201
    url = "/api/batches/b-share/events"
    responses = await asyncio.gather(*(api.get(url, params={"interval": 0.2}) for _ in range(8)))
    streams = [_events(r.text) for r in responses]
    for events in streams:
        assert events[-1] == ("end", {})
        assert events[-2][1]["phase"] == "completed"
    # One snapshot per interval for all eight, not one per subscriber and event.
    assert len(calls) <= max(len(e) for e in streams) + 1
    assert len(calls) < sum(len(e) - 1 for e in streams) / 2


async def test_an_error_event_ends_a_stream_that_cannot_go_on(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.h.submit(api_vins(2), batch_id="b-err")
    await api.h.result("b-err")
    calls = 0

    async def failing(client: Client, store: Store, batch_id: str) -> Snapshot:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RPCError("consistent query buffer is full", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
        return Snapshot("running", 2, {"succeeded": 1}, 1.0, None)

    monkeypatch.setattr(context_module, "snapshot", failing)
    response = await api.get("/api/batches/b-err/events", params={"interval": 0.2})
    assert response.status_code == 200
    assert response.text.startswith("retry: 5000\n\n")
    events = _events(response.text)
    assert [name for name, _ in events] == ["progress", "error"]
    assert events[-1][1] == {
        "detail": "progress is not available from Temporal: consistent query buffer is full"
    }


async def test_streams_past_the_limits_are_refused(api_factory: ApiFactory) -> None:
    settings = {"api_events_per_token": 2, "api_events_total": 3}
    async with api_factory(latency_ms=300, chunk_size=1, max_in_flight=1, **settings) as api:
        assert (await api.upload(api_vins(20), batch_id="b-cap")).status_code == 201
        assert (await api.post("/api/batches/b-cap/pause")).status_code == 200
        hub = api_context(api).events
        url = "/api/batches/b-cap/events"
        held = [asyncio.create_task(api.get(url, VIEWER)) for _ in range(2)]
        await _until(lambda: hub.open_streams == 2)

        refused = await api.get(url, VIEWER)
        assert refused.status_code == 429
        assert refused.json() == {
            "detail": "this token has 2 live event streams open, the most one token may "
            "hold: close one first"
        }
        assert refused.headers["retry-after"] == "5"
        held.append(asyncio.create_task(api.get(url, OPERATOR)))
        await _until(lambda: hub.open_streams == 3)
        full = await api.get(url, OPERATOR)
        assert full.status_code == 503
        assert full.json() == {
            "detail": "the API serves 3 live event streams, the most it holds at once: "
            "try again later"
        }

        for task in held:  # the clients go away: their slots come back
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        await _until(lambda: hub.open_streams == 0)
        assert (await api.post("/api/batches/b-cap/cancel")).status_code == 200
        after = await api.get(url, VIEWER)
        assert after.status_code == 200
        assert _events(after.text)[-1] == ("end", {})


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
