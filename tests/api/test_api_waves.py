"""Batches in waves through the API: the upload's wave fields, the progress's wave
state, and approving a wave (the exact answers when it is not the waiting one)."""

from __future__ import annotations

import asyncio
from typing import Any

from api_support import OPERATOR, VIEWER, Api, ApiFactory, api_vins
from fleetbatch.config import CommandSettings


async def _progress(api: Api, batch_id: str, check: Any) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            body: dict[str, Any] = (await api.get(f"/api/batches/{batch_id}")).json()
            if check(progress := body["progress"]):
                return progress
            await asyncio.sleep(0.1)


async def test_a_wave_waits_for_approval_through_the_api(api_factory: ApiFactory) -> None:
    fast = {"lock_doors": CommandSettings(rate="off")}
    async with api_factory(chunk_size=5, commands=fast) as api:
        uploaded = await api.upload(
            api_vins(40),
            batch_id="b-wv",
            waves="25%,all",
            gate_failures="10%",
            gate_min_items="5",
            approve_waves="true",
        )
        assert uploaded.status_code == 201, uploaded.text
        # The store's counts are read before the workflow's query: wait for both.
        waiting = await _progress(
            api, "b-wv", lambda p: p["awaiting_approval"] is not None and p["done"] == 10
        )
        assert (waiting["wave"], waiting["waves_total"], waiting["gate"]) == (1, 2, "holding")
        assert waiting["done"] == 10

        viewer = await api.post("/api/batches/b-wv/approve", token=VIEWER, json={"wave": 2})
        assert viewer.status_code == 403
        wrong = await api.post("/api/batches/b-wv/approve", json={"wave": 3})
        assert wrong.status_code == 409
        assert wrong.json() == {"detail": "batch 'b-wv' waits for approval of wave 2, not wave 3"}

        approved = await api.post("/api/batches/b-wv/approve", json={"wave": 2})
        assert approved.status_code == 200, approved.text
        assert approved.json() == {
            "batch_id": "b-wv",
            "action": "approve",
            "message": "wave 2 approved",
            "wave": 2,
            "waves_total": 2,
            "awaiting_approval": None,
        }
        counts = await api.h.result("b-wv")
        assert counts["succeeded"] == 40
        again = await api.post("/api/batches/b-wv/approve", json={"wave": 2})
        assert again.status_code == 409
        assert again.json() == {"detail": "batch 'b-wv' is not running"}


async def test_unreadable_waves_are_refused_at_upload(api: Api) -> None:
    response = await api.upload(api_vins(3), waves="10%,1%")
    assert response.status_code == 422
    assert "each wave must end past the one before" in response.text
    response = await api.upload(api_vins(3), gate_failures="5%")
    assert response.status_code == 422
    assert "gates and approvals are for waves: give the waves too" in response.text


async def test_a_webhook_needs_no_waves(api_factory: ApiFactory) -> None:
    fast = {"lock_doors": CommandSettings(rate="off")}
    async with api_factory(chunk_size=5, commands=fast) as api:
        hook = "https://hooks.example.com/fleet"
        uploaded = await api.upload(api_vins(10), batch_id="b-wh", webhook_url=hook)
        assert uploaded.status_code == 201, uploaded.text
        stored = await api.h.store.batches.get("b-wh")
        assert stored.rollout is not None
        assert (stored.rollout["webhook_url"], stored.rollout["waves"]) == (hook, [])
        assert (await api.h.result("b-wh"))["succeeded"] == 10


async def test_the_batch_page_shows_the_wave_and_approves_it(api_factory: ApiFactory) -> None:
    fast = {"lock_doors": CommandSettings(rate="off")}
    async with api_factory(chunk_size=5, commands=fast) as api:
        uploaded = await api.upload(
            api_vins(20), batch_id="b-pg", waves="25%,all", approve_waves="true"
        )
        assert uploaded.status_code == 201, uploaded.text
        await _progress(api, "b-pg", lambda p: p["awaiting_approval"] == 2)
        login = await api.http.post("/login", data={"token": OPERATOR, "next": "/"})
        assert login.status_code == 303
        page = await api.http.get("/batches/b-pg")
        assert 'wave <span id="wave">1</span> of <span id="waves-total">2</span>' in page.text
        assert 'action="/batches/b-pg/approve/2"' in page.text
        wrong = await api.http.post("/batches/b-pg/approve/3")
        assert wrong.status_code == 409
        assert "waits for approval of wave 2, not wave 3" in wrong.text
        approved = await api.http.post("/batches/b-pg/approve/2")
        assert approved.status_code == 303
        assert (await api.h.result("b-pg"))["succeeded"] == 20
