"""Rate ramps and overshoot bounds through the API: the upload's fields, what the
store keeps, the progress's allowed rate and in-flight allowance, and refusals."""

from __future__ import annotations

import asyncio
from typing import Any

from api_support import Api, ApiFactory, api_vins
from fleetbatch.config import CommandSettings


async def test_an_upload_with_a_ramp_and_a_bound_shows_both_in_its_progress(
    api_factory: ApiFactory,
) -> None:
    fast = {"lock_doors": CommandSettings(rate="off")}
    async with api_factory(chunk_size=5, commands=fast) as api:
        uploaded = await api.upload(
            api_vins(30),
            batch_id="b-rp",
            ramp="base=600/min,factor=2,after=10,max=1200/min",
            max_failures="2",
            overshoot="3",
        )
        assert uploaded.status_code == 201, uploaded.text
        stored = await api.h.store.batches.get("b-rp")
        assert stored.rollout is not None
        assert stored.rollout["ramp"] == {
            "base": 10.0,
            "factor": 2.0,
            "after": 10,
            "counts": "notified",
            "max": 20.0,
        }
        assert stored.rollout["overshoot"] == 3
        progress: dict[str, Any] = {}
        async with asyncio.timeout(30):
            while progress.get("allowed_per_minute") is None:
                body = (await api.get("/api/batches/b-rp")).json()
                progress = body["progress"]
                await asyncio.sleep(0.05)
        assert progress["allowed_per_minute"] in (600.0, 1200.0)
        # 2 failures tolerated, none yet: 2 + 3 in flight at most.
        assert progress["in_flight_allowance"] == 5
        assert (progress["wave"], progress["gate"]) == (0, None)
        assert (await api.h.result("b-rp"))["succeeded"] == 30


async def test_unreadable_ramps_and_bounds_are_refused_at_upload(api: Api) -> None:
    response = await api.upload(api_vins(3), ramp="base=fast")
    assert response.status_code == 422
    assert "invalid ramp 'base=fast'" in response.text
    response = await api.upload(api_vins(3), overshoot="10")
    assert response.status_code == 422
    assert (
        "an overshoot bound needs a rule to abort on: give --max-failures or a gate"
        in response.text
    )
