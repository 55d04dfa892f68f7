"""Reading batches and items: list filters and paging, detail with live progress and
links, items by status, key (VIN) prefix and cursor."""

from __future__ import annotations

from typing import Any

from api_support import Api, ApiFactory, api_vins
from fleetbatch.bus import CommandMessage
from fleetbatch.pipelines.vehicle.simulators import Decision


async def _run(api: Api, batch_id: str, rows: list[str], **fields: Any) -> None:
    response = await api.upload(rows, batch_id=batch_id, **fields)
    assert response.status_code == 201, response.text
    await api.h.result(batch_id)


async def test_list_filters_by_status_and_label_and_pages(api: Api) -> None:
    await _run(api, "b-l1", api_vins(2))
    await _run(api, "b-l2", api_vins(2, 10), command="flash_lights")
    await _run(api, "b-l3", api_vins(2, 20))

    everything = (await api.get("/api/batches")).json()
    assert [b["id"] for b in everything["batches"]] == ["b-l3", "b-l2", "b-l1"]
    assert everything["total"] == 3
    assert {b["status"] for b in everything["batches"]} == {"completed"}

    locks = (await api.get("/api/batches", params={"label": "lock_doors"})).json()
    assert [b["id"] for b in locks["batches"]] == ["b-l3", "b-l1"]
    assert locks["total"] == 2
    vehicle = (await api.get("/api/batches", params={"pipeline": "vehicle"})).json()
    assert [b["id"] for b in vehicle["batches"]] == ["b-l3", "b-l2", "b-l1"]
    assert {(b["pipeline"], b["label"]) for b in vehicle["batches"]} == {
        ("vehicle", "lock_doors"),
        ("vehicle", "flash_lights"),
    }
    no_enrich = (await api.get("/api/batches", params={"pipeline": "enrich"})).json()
    assert no_enrich == {"batches": [], "total": 0, "limit": 50, "offset": 0}
    none_open = (await api.get("/api/batches", params={"status": "open"})).json()
    assert none_open == {"batches": [], "total": 0, "limit": 50, "offset": 0}

    page = (await api.get("/api/batches", params={"limit": 1, "offset": 1})).json()
    assert [b["id"] for b in page["batches"]] == ["b-l2"]
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)

    bad = await api.get("/api/batches", params={"limit": 0})
    assert bad.status_code == 422
    assert bad.json() == {"detail": "query 'limit': Input should be greater than or equal to 1"}


async def test_detail_has_counts_rate_breaker_and_temporal_link(api: Api) -> None:
    await _run(api, "b-d1", api_vins(5), chunk_size=2)
    response = await api.get("/api/batches/b-d1")
    assert response.status_code == 200
    body = response.json()
    progress = body["progress"]
    assert progress["phase"] == "completed" and progress["finished"] is True
    assert (progress["total"], progress["done"], progress["percent"]) == (5, 5, 100.0)
    assert progress["counts"]["succeeded"] == 5
    assert progress["paused"] is False and progress["breaker"] == "closed"
    assert progress["items_per_second"] > 0 and progress["eta_seconds"] is None
    assert (body["chunk_size"], body["status"]) == (2, "completed")
    assert (body["pipeline"], body["label"], body["options"]) == (
        "vehicle",
        "lock_doors",
        {"command": "lock_doors"},
    )
    assert body["finished_at"] >= body["created_at"]
    assert body["workflow_id"] == "fleetbatch-batch-b-d1"
    ui = api.h.settings.temporal_web_url
    assert body["temporal_url"] == f"{ui}/namespaces/default/workflows/fleetbatch-batch-b-d1"


async def test_unknown_batch_is_404_everywhere(api: Api) -> None:
    for url in (
        "/api/batches/nope",
        "/api/batches/nope/items",
        "/api/batches/nope/report.csv",
        "/api/batches/nope/rejections.csv",
        "/api/batches/nope/events",
    ):
        response = await api.get(url)
        assert (response.status_code, response.json()) == (404, {"detail": "no batch 'nope'"}), url


async def test_items_filter_search_and_cursor(api_factory: ApiFactory) -> None:
    rows = api_vins(7)
    failing = {rows[1], rows[4]}

    def decide(message: CommandMessage) -> Decision:
        return Decision.FAIL if message.vin in failing else Decision.SUCCEED

    async with api_factory(decide=decide, denied_vins=[rows[6]]) as api:
        await _run(api, "b-i1", rows)

        failed = (await api.get("/api/batches/b-i1/items", params={"status": "failed"})).json()
        assert [i["key"] for i in failed["items"]] == [rows[1], rows[4]]
        assert failed["next_after"] is None
        assert all(i["error"] for i in failed["items"])
        assert all(i["effect_id"] and i["payload"] is None for i in failed["items"])
        assert all(
            i["temporal_url"].endswith(i["workflow_id"].replace(":", "%3A"))
            for i in failed["items"]
        )

        skipped = await api.get("/api/batches/b-i1/items", params={"status": "skipped"})
        assert [(i["key"], i["error"]) for i in skipped.json()["items"]] == [
            (rows[6], "owner has not consented")
        ]

        found = await api.get("/api/batches/b-i1/items", params={"key": rows[3].lower()})
        assert [(i["key"], i["line"]) for i in found.json()["items"]] == [(rows[3], 5)]
        prefix = await api.get("/api/batches/b-i1/items", params={"key": rows[0][:8]})
        assert [i["key"] for i in prefix.json()["items"]] == rows
        nothing = await api.get("/api/batches/b-i1/items", params={"key": "ZZZ"})
        assert nothing.json() == {"items": [], "next_after": None}

        seen: list[str] = []
        after = 0
        pages = 0
        while True:
            page = (
                await api.get("/api/batches/b-i1/items", params={"limit": 3, "after": after})
            ).json()
            seen += [i["key"] for i in page["items"]]
            pages += 1
            if page["next_after"] is None:
                break
            after = page["next_after"]
        assert (seen, pages) == (rows, 3)

        bad = await api.get("/api/batches/b-i1/items", params={"status": "lost"})
        assert bad.status_code == 422
        assert bad.json()["detail"].startswith("query 'status': Input should be 'pending', ")
