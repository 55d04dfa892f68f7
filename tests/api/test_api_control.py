"""Steering batches through the API: pause, resume, cancel, redrive, and the exact
answers when the batch is unknown or already finished."""

from __future__ import annotations

import asyncio
from typing import Any

from api_support import Api, ApiFactory, api_vins
from fleetbatch.bus import CommandMessage
from fleetbatch.pipelines.vehicle.simulators import Decision


async def _detail(api: Api, batch_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/batches/{batch_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _until(api: Api, batch_id: str, check: Any, timeout: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while not check((body := await _detail(api, batch_id))["progress"]):
            await asyncio.sleep(0.1)
    return body


async def test_pause_and_resume(api_factory: ApiFactory) -> None:
    async with api_factory(latency_ms=40, chunk_size=4, max_in_flight=1) as api:
        assert (await api.upload(api_vins(40), batch_id="b-pr")).status_code == 201
        await _until(api, "b-pr", lambda p: p["done"] >= 4)

        response = await api.post("/api/batches/b-pr/pause")
        assert response.status_code == 200
        assert response.json() == {"batch_id": "b-pr", "action": "pause", "message": "pausing"}
        paused = await _until(api, "b-pr", lambda p: p["phase"] == "paused")
        assert paused["progress"]["paused"] is True
        assert paused["progress"]["done"] < 40

        response = await api.post("/api/batches/b-pr/resume")
        assert response.json() == {"batch_id": "b-pr", "action": "resume", "message": "resumed"}
        counts = await api.h.result("b-pr")
        assert counts["succeeded"] == 40


async def test_cancel_ends_every_unsettled_item_cancelled(api_factory: ApiFactory) -> None:
    async with api_factory(latency_ms=40, chunk_size=4, max_in_flight=1) as api:
        assert (await api.upload(api_vins(40), batch_id="b-cx")).status_code == 201
        await _until(api, "b-cx", lambda p: p["done"] >= 4)
        response = await api.post("/api/batches/b-cx/cancel", json={"reason": "wrong file"})
        batch = await api.h.store.batches.get("b-cx")
        assert batch.stop_requested_at is not None and batch.last_published_at is not None
        last = f"{batch.last_published_at:%Y-%m-%d %H:%M:%S} UTC"
        assert response.json() == {
            "batch_id": "b-cx",
            "action": "cancel",
            "message": f"cancelling: nothing more is published; the last publish began at {last}",
        }
        counts = await api.h.result("b-cx")
        # Nothing was published after the stop was recorded.
        after = await api.h.store.batches.get("b-cx")
        assert after.last_published_at == batch.last_published_at
        assert counts["cancelled"] > 0
        assert counts["cancelled"] + counts["succeeded"] == 40
        detail = await _detail(api, "b-cx")
        assert detail["status"] == "cancelled"
        assert detail["progress"]["stop_reason"] == "wrong file"


async def test_control_on_a_finished_batch_is_409(api: Api) -> None:
    assert (await api.upload(api_vins(3), batch_id="b-fin")).status_code == 201
    await api.h.result("b-fin")
    for action in ("pause", "resume", "cancel"):
        response = await api.post(f"/api/batches/b-fin/{action}")
        assert response.status_code == 409, action
        assert response.json() == {"detail": "batch 'b-fin' is not running"}


async def test_control_on_an_unknown_batch_is_404(api: Api) -> None:
    for action in ("pause", "resume", "cancel", "redrive"):
        response = await api.post(f"/api/batches/nope/{action}")
        assert (response.status_code, response.json()) == (404, {"detail": "no batch 'nope'"})


async def test_cancel_reason_is_checked(api: Api) -> None:
    response = await api.post("/api/batches/nope/cancel", json={"reason": ""})
    assert response.status_code == 422
    assert response.json() == {"detail": "body 'reason': String should have at least 1 character"}


async def test_redrive_runs_failed_items_again(api_factory: ApiFactory) -> None:
    rows = api_vins(6)
    fail_once = {rows[2], rows[3]}
    answered: set[str] = set()

    def decide(message: CommandMessage) -> Decision:
        if message.vin in fail_once and message.vin not in answered:
            answered.add(message.vin)
            return Decision.FAIL
        return Decision.SUCCEED

    async with api_factory(decide=decide, latency_ms=30, chunk_size=3) as api:
        assert (await api.upload(rows, batch_id="b-rd")).status_code == 201
        running = await api.post("/api/batches/b-rd/redrive")
        assert running.status_code == 409
        assert running.json()["detail"].startswith("batch 'b-rd' is ")
        assert running.json()["detail"].endswith(": only a finished batch can be redriven")

        counts = await api.h.result("b-rd")
        assert counts["failed"] == 2
        response = await api.post("/api/batches/b-rd/redrive")
        assert response.json() == {"batch_id": "b-rd", "redriven": 2}
        async with asyncio.timeout(30):
            while (await _detail(api, "b-rd"))["progress"]["counts"].get("succeeded", 0) < 6:
                await asyncio.sleep(0.1)
        await api.h.result("b-rd")
        again = await api.post("/api/batches/b-rd/redrive")
        assert again.json() == {"batch_id": "b-rd", "redriven": 0}
