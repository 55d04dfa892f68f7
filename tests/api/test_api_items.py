"""One item in detail: ``GET /api/batches/{id}/items/{key}`` and its web page."""

from __future__ import annotations

from datetime import datetime

from api_support import ATTEMPT_FIELDS, ITEM_FIELDS, VIEWER, Api, ApiFactory, api_vins
from fleetbatch.bus import CommandMessage
from fleetbatch.pipelines.vehicle.simulators import Decision


def utc(stamp: str) -> datetime:
    """An API timestamp, which must be UTC and say so."""
    assert stamp.endswith("Z"), stamp
    return datetime.fromisoformat(stamp)


async def test_item_with_its_attempts(api_factory: ApiFactory) -> None:
    late, fine = api_vins(2, 300)

    def decide(message: CommandMessage) -> Decision:
        return Decision.DROP if message.vin == late and message.attempt == 1 else Decision.SUCCEED

    async with api_factory(decide=decide, response_timeout_seconds=1) as api:
        upload = await api.upload([late, fine], batch_id="b-item")
        assert upload.status_code == 201, upload.text
        await api.h.result("b-item")
        # Keys are read as the pipeline reads them: a VIN in any case.
        response = await api.get(f"/api/batches/b-item/items/{late.lower()}")
        assert response.status_code == 200, response.text
        body = response.json()
        row = (await api.h.items("b-item"))[late]

    assert set(body) == ITEM_FIELDS
    assert (body["batch_id"], body["key"], body["line"]) == ("b-item", late, 2)
    assert (body["status"], body["outcome"], body["error"]) == ("succeeded", "succeeded", None)
    assert body["effect_id"] == row["effect_id"]
    assert body["workflow_id"] == row["workflow_id"]
    ui = api.h.settings.temporal_web_url
    workflow = row["workflow_id"].replace(":", "%3A")
    assert body["temporal_url"] == f"{ui}/namespaces/default/workflows/{workflow}"
    attempts = body["attempts"]
    assert all(set(a) == ATTEMPT_FIELDS for a in attempts)
    assert [(a["attempt"], a["effect_id"], a["outcome"]) for a in attempts] == [
        (1, row["effect_id"], "timed out after 1s"),
        (2, row["effect_id"], "succeeded"),
    ]
    assert attempts[0]["answered_at"] is None
    first, second = (utc(a["published_at"]) for a in attempts)
    assert (second - first).total_seconds() >= 1
    assert second <= utc(attempts[1]["answered_at"]) <= utc(body["updated_at"])


async def test_unknown_batch_or_key_is_404(api: Api) -> None:
    [vin] = api_vins(1, 310)
    await api.h.submit([vin], batch_id="b-item-404")
    await api.h.result("b-item-404")
    other = api_vins(1, 311)[0]
    for url, detail in (
        (f"/api/batches/nope/items/{vin}", "no batch 'nope'"),
        (f"/api/batches/b-item-404/items/{other}", f"batch 'b-item-404' has no item '{other}'"),
    ):
        response = await api.get(url)
        assert (response.status_code, response.json()) == (404, {"detail": detail}), url
    response = await api.http.get(f"/api/batches/b-item-404/items/{vin}")
    assert response.status_code == 401


async def test_item_page_shows_attempts_and_is_linked_from_the_batch(api: Api) -> None:
    [vin] = api_vins(1, 320)
    await api.h.submit([vin], batch_id="b-item-page")
    await api.h.result("b-item-page")
    row = (await api.h.items("b-item-page"))[vin]
    await api.http.post("/login", data={"token": VIEWER, "next": "/"})

    batch = await api.http.get("/batches/b-item-page")
    assert f'href="/batches/b-item-page/items/{vin}"' in batch.text
    page = await api.http.get(f"/batches/b-item-page/items/{vin}")
    assert page.status_code == 200
    assert f'<span id="item-key" class="vin">{vin}</span>' in page.text
    assert '<span id="item-status" class="status succeeded">succeeded</span>' in page.text
    assert f'<code id="effect-id">{row["effect_id"]}</code>' in page.text
    assert page.text.count('<tr class="attempt">') == 1
    assert "<td>succeeded</td>" in page.text
    assert 'id="temporal-link"' in page.text
    missing = await api.http.get("/batches/b-item-page/items/NOPE")
    assert missing.status_code == 404
    assert "batch &#39;b-item-page&#39; has no item &#39;NOPE&#39;" in missing.text
