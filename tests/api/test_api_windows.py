"""Schedules and policies through the API: the upload's fields, the progress's
window state, the batch page, and the exact refusals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from api_support import VIEWER, Api, ApiFactory, api_vins
from fleetbatch.config import CommandSettings, PolicySettings
from fleetbatch.domain.policies import BUILT_IN_POLICIES


async def _progress(api: Api, batch_id: str, check: Any) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            body: dict[str, Any] = (await api.get(f"/api/batches/{batch_id}")).json()
            if check(body["progress"]):
                return body
            await asyncio.sleep(0.1)


async def test_a_batch_outside_its_window_waits_and_says_until_when(
    api_factory: ApiFactory,
) -> None:
    fast = {"lock_doors": CommandSettings(rate="off")}
    opens = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    window = f"{opens.minute} {opens.hour} * * * 30m UTC"
    async with api_factory(chunk_size=5, commands=fast) as api:
        uploaded = await api.upload(
            api_vins(10), batch_id="b-win", windows=f"{window}; 0 0 29 2 * 1h UTC"
        )
        assert uploaded.status_code == 201, uploaded.text
        body = await _progress(api, "b-win", lambda p: p["window"] == "waiting")
        login = await api.http.post("/login", data={"token": VIEWER, "next": "/"})
        assert login.status_code == 303
        page = await api.http.get("/batches/b-win")
        cancelled = await api.post("/api/batches/b-win/cancel")
        assert cancelled.status_code == 200, cancelled.text
        counts = await api.h.result("b-win")
    progress = body["progress"]
    assert datetime.fromisoformat(progress["window_until"]) == opens
    assert progress["done"] == 0 and progress["wave"] == 0
    assert body["rollout"]["windows"] == [window, "0 0 29 2 * 1h UTC"]
    assert len(api.h.domain.delivered) == 0
    assert counts["cancelled"] == 10
    assert 'id="window-state" class="status waiting">waiting</span>' in page.text
    assert f"{opens:%Y-%m-%d %H:%M:%S} UTC</time>" in page.text


async def test_policies_at_upload(api_factory: ApiFactory) -> None:
    night = PolicySettings(waves="10%,all", windows=["01:00-05:00 Europe/Berlin"])
    async with api_factory(policies={"night": night}) as api:
        named = await api.upload(api_vins(3), batch_id="b-pol", policy="night", waves="50%,all")
        ota = await api.upload(api_vins(3), batch_id="b-ota", command="ota_update")
        opted_out = await api.upload(
            api_vins(3), batch_id="b-out", command="ota_update", policy="all-at-once"
        )
        for batch in ("b-pol", "b-ota", "b-out"):
            await api.post(f"/api/batches/{batch}/cancel")
        rollouts = [
            (await api.get(f"/api/batches/{b}")).json()["rollout"]
            for b in ("b-pol", "b-ota", "b-out")
        ]
        unknown = await api.upload(api_vins(3), policy="cautious_ota")
        bad_time = await api.upload(api_vins(3), start_at="tomorrow")
    assert [r.status_code for r in (named, ota, opted_out)] == [201, 201, 201]
    # The upload's waves override the policy's; its window stays.
    assert (rollouts[0]["policy"], rollouts[0]["waves"]) == ("night", ["50%", "all"])
    assert rollouts[0]["windows"] == ["01:00-05:00 Europe/Berlin"]
    # ota_update's default policy, unless another is named.
    assert (rollouts[1]["policy"], rollouts[1]["waves"]) == ("cautious-ota", ["1%", "10%", "all"])
    assert (rollouts[1]["gate_failures"], rollouts[1]["on_gate_failure"]) == ("2%", "pause")
    assert (rollouts[2]["policy"], rollouts[2]["waves"]) == ("all-at-once", [])
    known = ", ".join(sorted({*BUILT_IN_POLICIES, "night"}))
    assert unknown.status_code == 422
    assert unknown.json() == {
        "detail": "unknown rollout policy 'cautious_ota'; did you mean 'cautious-ota'? "
        f"(known policies: {known})"
    }
    assert bad_time.status_code == 422
    assert bad_time.json() == {
        "detail": "invalid time 'tomorrow': give an ISO 8601 time such as '2026-12-24T01:00+01:00'"
    }
