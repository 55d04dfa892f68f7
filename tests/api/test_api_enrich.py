"""The enrich pipeline through the API: uploads of users files with their exact
rejections and refusals, and the batch's result files, listed and downloaded by
name only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api_support import ENRICHMENT, OPERATOR, Api, ApiFactory, api_users, api_vins, auth, users_csv
from fleetbatch.errors import BatchNotFoundError
from fleetbatch.pipelines.enrich.output import output_dir, write_chunk_file
from fleetbatch.pipelines.enrich.service import region_for, segment_and_score
from fleetbatch.services.outputs import output_file


async def _nothing_stored(api: Api) -> None:
    listed = (await api.get("/api/batches")).json()
    assert listed["total"] == 0, listed


def _file_name(batch_id: str, first: int, last: int, ext: str = "jsonl") -> str:
    return f"{batch_id}-items-{first:012d}-{last:012d}.{ext}"


async def test_enrich_upload_reports_rejections_runs_and_writes_result_files(
    api_factory: ApiFactory,
) -> None:
    users = api_users(4)
    data = users_csv(
        [
            users[0],
            ("", "nobody@example.com", "fr"),
            (users[1][0], "not-an-email", "us"),
            users[2],
            (users[0][0], "again@example.com", "de"),
            (users[3][0], users[3][1], "ES"),
        ]
    )
    async with api_factory(enrichment=ENRICHMENT) as api:
        response = await api.upload(
            data, "users.csv", pipeline="enrich", batch_id="b-en-1", chunk_size=2
        )

        assert response.status_code == 201, response.text
        assert response.json() == {
            "batch_id": "b-en-1",
            "upload_id": 1,
            "pipeline": "enrich",
            "label": "enrich",
            "accepted": 3,
            "rejected": 3,
            "rejections": [
                {"line": 3, "value": "nobody@example.com", "reason": "missing user_id"},
                {"line": 4, "value": users[1][0], "reason": "invalid email 'not-an-email'"},
                {
                    "line": 6,
                    "value": users[0][0],
                    "reason": "duplicate user_id, first seen on line 2",
                },
            ],
        }
        counts = await api.h.result("b-en-1")
        assert counts["succeeded"] == 3

        detail = (await api.get("/api/batches/b-en-1")).json()
        assert (detail["pipeline"], detail["label"], detail["options"]) == (
            "enrich",
            "enrich",
            {"format": "jsonl"},
        )
        assert (detail["status"], detail["chunk_size"]) == ("completed", 2)
        assert detail["progress"]["breaker"] is None
        assert detail["progress"]["counts"]["succeeded"] == 3

        items = (await api.get("/api/batches/b-en-1/items")).json()["items"]
        expected_users = [users[0], users[2], (users[3][0], users[3][1], "ES")]
        assert [(i["key"], i["line"], i["status"]) for i in items] == [
            (users[0][0], 2, "succeeded"),
            (users[2][0], 5, "succeeded"),
            (users[3][0], 7, "succeeded"),
        ]
        for item, (user_id, email, country) in zip(items, expected_users, strict=True):
            assert item["payload"] == {"email": email, "country": country.upper()}
            segment, score = segment_and_score(user_id)
            assert item["result"] == {
                "user_id": user_id,
                "enriched": True,
                "region": region_for(country.upper()),
                "segment": segment,
                "score": score,
                "source": "service",
            }
            assert item["error"] is None
        found = await api.get("/api/batches/b-en-1/items", params={"key": users[2][0]})
        assert [i["key"] for i in found.json()["items"]] == [users[2][0]]

        listed = await api.get("/api/batches/b-en-1/outputs")
        assert listed.status_code == 200
        first_id = items[0]["id"]
        names = [
            _file_name("b-en-1", first_id, first_id + 1),
            _file_name("b-en-1", *[first_id + 2] * 2),
        ]
        directory = output_dir(api.h.settings.data_dir, "b-en-1")
        assert listed.json() == [
            {"name": name, "size": (directory / name).stat().st_size} for name in names
        ]

        download = await api.get(f"/api/batches/b-en-1/outputs/{names[0]}")
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/x-ndjson"
        assert download.headers["content-disposition"] == f'attachment; filename="{names[0]}"'
        records = [json.loads(line) for line in download.text.splitlines()]
        assert [(r["user_id"], r["email"], r["country"], r["status"]) for r in records] == [
            (users[0][0], users[0][1], "DE", "succeeded"),
            (users[2][0], users[2][1], "DE", "succeeded"),
        ]
        assert download.content == (directory / names[0]).read_bytes()


async def test_enrich_csv_result_files_and_a_late_file(api_factory: ApiFactory) -> None:
    users = api_users(3, 100)
    async with api_factory(enrichment=ENRICHMENT) as api:
        first = await api.upload(
            users_csv(users[:2]), "users.csv", pipeline="enrich", format="csv", batch_id="b-en-c"
        )
        assert first.status_code == 201, first.text
        assert (first.json()["accepted"], first.json()["rejected"]) == (2, 0)
        late = await api.http.post(
            "/api/batches/b-en-c/files",
            files={"file": ("more.csv", users_csv([users[0], users[2]]), "text/csv")},
            headers=auth(OPERATOR),
        )
        assert late.status_code == 201, late.text
        assert late.json() == {
            "batch_id": "b-en-c",
            "upload_id": 2,
            "pipeline": "enrich",
            "label": "enrich",
            "accepted": 1,
            "rejected": 1,
            "rejections": [
                {
                    "line": 2,
                    "value": users[0][0],
                    "reason": "duplicate user_id, first seen on line 2 of upload 1",
                }
            ],
        }
        await api.h.result("b-en-c")
        assert len(await api.h.items("b-en-c")) == 3
        detail = (await api.get("/api/batches/b-en-c")).json()
        assert detail["options"] == {"format": "csv"}

        listed = (await api.get("/api/batches/b-en-c/outputs")).json()
        assert listed and all(f["name"].endswith(".csv") for f in listed)
        download = await api.get(f"/api/batches/b-en-c/outputs/{listed[0]['name']}")
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/csv")
        assert download.text.splitlines()[0].startswith("user_id,email,country,status,")


async def test_enrich_file_without_a_user_id_column_is_422(api: Api) -> None:
    response = await api.upload(
        b"id,email,country\n1,a@example.com,de\n", "users.csv", pipeline="enrich"
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "line 1: no 'user_id' column in the header (found: id, email, country)"
    }
    await _nothing_stored(api)


async def test_an_unknown_pipeline_is_422(api: Api) -> None:
    response = await api.upload(users_csv(api_users(1)), "users.csv", pipeline="enrch")
    assert response.status_code == 422
    assert response.json() == {
        "detail": "unknown pipeline 'enrch'; did you mean 'enrich'? (known: enrich, vehicle)"
    }
    response = await api.upload(users_csv(api_users(1)), "users.csv", pipeline="weather")
    assert response.status_code == 422
    assert response.json() == {"detail": "unknown pipeline 'weather' (known: enrich, vehicle)"}
    await _nothing_stored(api)


async def test_an_invalid_enrich_option_is_422(api: Api) -> None:
    response = await api.upload(
        users_csv(api_users(1)), "users.csv", pipeline="enrich", format="xml"
    )
    assert response.status_code == 422
    assert response.json() == {"detail": "unknown output format 'xml': use jsonl or csv"}
    response = await api.upload(
        users_csv(api_users(1)), "users.csv", pipeline="enrich", command="lock_doors"
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "the enrich pipeline takes no option 'command' (it takes: format)"
    }
    await _nothing_stored(api)


async def test_an_enrich_file_for_a_vehicle_batch_is_409(api: Api) -> None:
    assert (await api.upload(api_vins(1, 40), batch_id="b-mixed")).status_code == 201
    response = await api.upload(
        users_csv(api_users(1)), "users.csv", pipeline="enrich", batch_id="b-mixed"
    )
    assert response.status_code == 409
    assert response.json() == {"detail": "batch 'b-mixed' is a vehicle batch, not enrich"}
    await api.h.result("b-mixed")
    assert len(await api.h.items("b-mixed")) == 1


async def test_list_filters_by_pipeline(api_factory: ApiFactory) -> None:
    async with api_factory(enrichment=ENRICHMENT) as api:
        assert (await api.upload(api_vins(1, 50), batch_id="b-pv")).status_code == 201
        users = users_csv(api_users(1, 200))
        assert (await api.upload(users, pipeline="enrich", batch_id="b-pe")).status_code == 201
        await api.h.result("b-pv")
        await api.h.result("b-pe")
        for params, ids in (
            ({"pipeline": "enrich"}, ["b-pe"]),
            ({"pipeline": "vehicle"}, ["b-pv"]),
            ({"label": "enrich"}, ["b-pe"]),
            ({"label": "lock_doors"}, ["b-pv"]),
            ({"pipeline": "enrich", "label": "lock_doors"}, []),
            ({}, ["b-pe", "b-pv"]),
        ):
            body = (await api.get("/api/batches", params=params)).json()
            assert ([b["id"] for b in body["batches"]], body["total"]) == (ids, len(ids)), params


# -- result files: by listed name only ------------------------------------------


async def test_outputs_of_a_batch_without_files_is_an_empty_list(api: Api) -> None:
    assert (await api.upload(api_vins(2, 60), batch_id="b-noout")).status_code == 201
    await api.h.result("b-noout")
    response = await api.get("/api/batches/b-noout/outputs")
    assert (response.status_code, response.json()) == (200, [])


async def test_outputs_are_listed_and_downloaded_by_viewers(api: Api) -> None:
    assert (await api.upload(api_vins(1, 70), batch_id="b-out")).status_code == 201
    await api.h.result("b-out")
    directory = output_dir(api.h.settings.data_dir, "b-out")
    records = [{"user_id": "u1", "score": 3}, {"user_id": "u2", "score": 4}]
    jsonl = write_chunk_file(directory, "b-out", 1, 2, records)
    csv_file = write_chunk_file(directory, "b-out", 3, 4, records, "csv")
    # A half-written file of a running chunk is neither listed nor served.
    (directory / f".{jsonl.name}.x1.tmp").write_text("partial")

    response = await api.get("/api/batches/b-out/outputs")
    assert response.status_code == 200
    assert response.json() == [
        {"name": jsonl.name, "size": jsonl.stat().st_size},
        {"name": csv_file.name, "size": csv_file.stat().st_size},
    ]
    assert jsonl.name == "b-out-items-000000000001-000000000002.jsonl"

    got = await api.get(f"/api/batches/b-out/outputs/{jsonl.name}")
    assert got.status_code == 200
    assert got.text == '{"user_id":"u1","score":3}\n{"user_id":"u2","score":4}\n'
    got = await api.get(f"/api/batches/b-out/outputs/{csv_file.name}")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/csv")
    assert got.text.replace("\r\n", "\n") == "user_id,score\nu1,3\nu2,4\n"

    temp = await api.get(f"/api/batches/b-out/outputs/.{jsonl.name}.x1.tmp")
    assert temp.status_code == 404
    assert temp.json() == {"detail": f"batch 'b-out' has no result file '.{jsonl.name}.x1.tmp'"}

    stranger = await api.http.get(f"/api/batches/b-out/outputs/{jsonl.name}")
    assert (stranger.status_code, stranger.json()) == (401, {"detail": "missing bearer token"})
    stranger = await api.http.get("/api/batches/b-out/outputs")
    assert (stranger.status_code, stranger.json()) == (401, {"detail": "missing bearer token"})


async def test_outputs_never_leave_the_batch_directory(api: Api) -> None:
    for batch_id, start in (("b-trav", 80), ("b-other", 90)):
        assert (await api.upload(api_vins(1, start), batch_id=batch_id)).status_code == 201
        await api.h.result(batch_id)
    data_dir: Path = api.h.settings.data_dir
    mine = write_chunk_file(output_dir(data_dir, "b-trav"), "b-trav", 1, 1, [{"a": 1}])
    theirs = write_chunk_file(output_dir(data_dir, "b-other"), "b-other", 2, 2, [{"b": 2}])
    (data_dir / "secret.txt").write_text("top secret")
    (data_dir / "output" / "secret.txt").write_text("top secret")

    assert (await api.get(f"/api/batches/b-trav/outputs/{mine.name}")).status_code == 200
    # An encoded slash decodes to a path of more segments, which no route matches.
    for name in (
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F..%2Fsecret.txt",
        "..%2Fsecret.txt",
        "..%2Fb-other%2F" + theirs.name,
        "%2Fetc%2Fpasswd",
        "%2E%2E%2F%2E%2E%2Fsecret.txt",
    ):
        response = await api.get(f"/api/batches/b-trav/outputs/{name}")
        assert (response.status_code, response.json()) == (404, {"detail": "Not Found"}), name
    # A name that reaches the route is looked up among the listed names, never joined.
    for sent, name in (
        ("%2E%2E", ".."),
        ("secret.txt", "secret.txt"),
        (theirs.name, theirs.name),
        ("nope.jsonl", "nope.jsonl"),
    ):
        response = await api.get(f"/api/batches/b-trav/outputs/{sent}")
        assert response.status_code == 404, name
        assert response.json() == {"detail": f"batch 'b-trav' has no result file {name!r}"}


async def test_output_lookup_takes_listed_names_only(api: Api) -> None:
    """What the route cannot be sent (a name with a slash) the lookup refuses too."""
    assert (await api.upload(api_vins(1, 95), batch_id="b-look")).status_code == 201
    await api.h.result("b-look")
    data_dir: Path = api.h.settings.data_dir
    mine = write_chunk_file(output_dir(data_dir, "b-look"), "b-look", 1, 1, [{"a": 1}])
    (data_dir / "secret.txt").write_text("top secret")
    store, settings = api.h.store, api.h.settings
    assert await output_file(store, settings, "b-look", mine.name) == mine
    for name in (
        "../../secret.txt",
        f"../b-look/{mine.name}",
        f"./{mine.name}",
        str(mine),
        str(data_dir / "secret.txt"),
        "/etc/passwd",
    ):
        with pytest.raises(BatchNotFoundError) as caught:
            await output_file(store, settings, "b-look", name)
        assert str(caught.value) == f"batch 'b-look' has no result file {name!r}"


async def test_outputs_of_an_unknown_batch_are_404(api: Api) -> None:
    for url in ("/api/batches/nope/outputs", "/api/batches/nope/outputs/x.jsonl"):
        response = await api.get(url)
        assert (response.status_code, response.json()) == (404, {"detail": "no batch 'nope'"}), url
