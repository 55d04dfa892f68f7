"""Uploads through the API: the CLI's validation and rejection report, a size limit
checked while the body streams in, and bad files refused with nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator

from api_support import OPERATOR, Api, ApiFactory, api_vins, auth


async def _nothing_stored(api: Api) -> None:
    listed = (await api.get("/api/batches")).json()
    assert listed["total"] == 0, listed


async def test_upload_stores_valid_rows_reports_rejected_ones_and_runs(api: Api) -> None:
    good = api_vins(3)
    response = await api.upload(["nope", good[0], good[1], good[0], good[2]], batch_id="b-up-1")

    assert response.status_code == 201, response.text
    assert response.json() == {
        "batch_id": "b-up-1",
        "upload_id": 1,
        "pipeline": "vehicle",
        "label": "lock_doors",
        "accepted": 3,
        "rejected": 2,
        "rejections": [
            {"line": 2, "value": "nope", "reason": "VIN must be 17 characters, got 4"},
            {"line": 5, "value": good[0], "reason": "duplicate VIN, first seen on line 3"},
        ],
    }
    counts = await api.h.result("b-up-1")
    assert counts["succeeded"] == 3


async def test_a_late_file_joins_the_batch(api: Api) -> None:
    first = await api.upload(api_vins(2), batch_id="b-late")
    assert first.status_code == 201, first.text
    late = await api.http.post(
        "/api/batches/b-late/files",
        files={
            "file": ("more.ndjson", b'{"vin": "%s"}\n' % api_vins(1, 9)[0].encode(), "text/plain")
        },
        headers=auth(OPERATOR),
    )
    assert late.status_code == 201, late.text
    assert late.json()["accepted"] == 1
    assert (late.json()["pipeline"], late.json()["label"]) == ("vehicle", "lock_doors")
    await api.h.result("b-late")
    assert len(await api.h.items("b-late")) == 3


async def test_a_file_for_an_unknown_batch_is_404(api: Api) -> None:
    response = await api.http.post(
        "/api/batches/nope/files",
        files={"file": ("v.csv", b"vin\n" + api_vins(1, 1)[0].encode(), "text/csv")},
        headers=auth(OPERATOR),
    )
    assert (response.status_code, response.json()) == (404, {"detail": "no batch 'nope'"})


async def test_too_large_by_content_length_is_413(api_factory: ApiFactory) -> None:
    async with api_factory(api_max_upload_bytes=1000) as api:
        response = await api.upload(api_vins(100))
        assert response.status_code == 413
        assert response.json() == {"detail": "upload is larger than the limit of 1,000 bytes"}
        await _nothing_stored(api)


async def test_too_large_while_streaming_is_413(api_factory: ApiFactory) -> None:
    """No Content-Length (chunked): the limit holds as the bytes arrive."""
    boundary = "b0undary"
    rows = b"".join(v.encode() + b"\n" for v in api_vins(200))

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="command"\r\n\r\n'
            f"lock_doors\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="v.csv"\r\n'
            "Content-Type: text/csv\r\n\r\nvin\n"
        ).encode()
        for start in range(0, len(rows), 512):
            yield rows[start : start + 512]
        yield f"\r\n--{boundary}--\r\n".encode()

    async with api_factory(api_max_upload_bytes=2000) as api:
        response = await api.http.post(
            "/api/batches",
            content=body(),
            headers={
                **auth(OPERATOR),
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json() == {"detail": "upload is larger than the limit of 2,000 bytes"}
        await _nothing_stored(api)


async def test_a_file_without_a_vin_column_is_422_and_stores_nothing(api: Api) -> None:
    response = await api.upload(b"serial,colour\n1,red\n")
    assert response.status_code == 422
    assert response.json() == {
        "detail": "line 1: no 'vin' column in the header (found: serial, colour)"
    }
    await _nothing_stored(api)


async def test_a_file_that_is_not_utf8_is_422(api: Api) -> None:
    response = await api.upload(b"vin\n" + api_vins(1, 1)[0].encode() + b"\n\xff\xfe\n")
    assert response.status_code == 422
    assert response.json() == {"detail": "line 3: not valid UTF-8 (byte 0xff at offset 0)"}
    await _nothing_stored(api)


async def test_an_unknown_command_is_422(api: Api) -> None:
    response = await api.upload(api_vins(1), command="self_destruct")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("unknown command 'self_destruct' (known commands: ")
    await _nothing_stored(api)


async def test_a_new_batch_needs_a_command(api: Api) -> None:
    response = await api.http.post(
        "/api/batches",
        files={"file": ("v.csv", b"vin\n" + api_vins(1, 1)[0].encode(), "text/csv")},
        data={"batch_id": "b-nocmd"},
        headers=auth(OPERATOR),
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "a new vehicle batch needs the command to send (backoffice_update, flash_lights, "
        "honk_horn, lock_doors, ota_update, unlock_doors)"
    }
    await _nothing_stored(api)


async def test_bad_fields_are_422(api: Api) -> None:
    response = await api.upload(api_vins(1), chunk_size="many")
    assert response.status_code == 422
    assert response.json() == {
        "detail": "field 'chunk_size': Input should be a valid integer, "
        "unable to parse string as an integer"
    }
    response = await api.upload(api_vins(1), colour="red")
    assert response.json() == {"detail": "field 'colour': Extra inputs are not permitted"}


async def test_no_file_part_is_422(api: Api) -> None:
    response = await api.http.post(
        "/api/batches", data={"command": "lock_doors"}, files={}, headers=auth(OPERATOR)
    )
    assert response.status_code == 422
    assert response.json() in (
        {"detail": "no file in the upload: send it in the multipart field 'file'"},
        {"detail": "send the file as multipart/form-data in the field 'file'"},
    )
    response = await api.http.post(
        "/api/batches",
        files={"other": ("v.csv", b"vin\n", "text/csv")},
        headers=auth(OPERATOR),
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "no file in the upload: send it in the multipart field 'file'"
    }


async def test_a_json_body_is_422(api: Api) -> None:
    response = await api.http.post("/api/batches", json={"vins": ["x"]}, headers=auth(OPERATOR))
    assert response.status_code == 422
    assert response.json() == {"detail": "send the file as multipart/form-data in the field 'file'"}


async def test_a_conflicting_batch_is_409(api: Api) -> None:
    assert (await api.upload(api_vins(1), batch_id="b-conf")).status_code == 201
    response = await api.upload(api_vins(1, 5), batch_id="b-conf", command="flash_lights")
    assert response.status_code == 409
    assert response.json() == {"detail": "batch 'b-conf' runs 'lock_doors', not 'flash_lights'"}
    await api.h.result("b-conf")


async def test_a_file_of_rejected_rows_closes_its_batch_and_is_422(api: Api) -> None:
    response = await api.upload(["nope", "ALSO-BAD"], batch_id="b-allbad")
    assert response.status_code == 422  # was 201, and an open batch forever
    assert response.json() == {
        "detail": "no valid rows in 'vins.csv' (2 rejected): batch 'b-allbad' is closed "
        "without running; its rejections report lists every row"
    }
    batch = (await api.get("/api/batches/b-allbad")).json()
    assert batch["status"] == "aborted"
    assert batch["finished_at"] is not None
    assert batch["progress"]["finished"] is True
    assert batch["progress"]["stop_reason"] == ("no valid rows: every row of its file was rejected")
    report = await api.get("/api/batches/b-allbad/rejections.csv")
    assert "VIN must be 17 characters, got 4" in report.text
    assert "VIN must be 17 characters, got 8" in report.text
    # Closed: it takes no more files.
    again = await api.upload(api_vins(1), batch_id="b-allbad")
    assert again.status_code == 409


async def test_a_late_file_of_rejected_rows_leaves_its_batch_running(api: Api) -> None:
    assert (await api.upload(api_vins(2), batch_id="b-latebad")).status_code == 201
    late = await api.http.post(
        "/api/batches/b-latebad/files",
        files={"file": ("bad.csv", b"vin\nnope\n", "text/csv")},
        headers=auth(OPERATOR),
    )
    assert late.status_code == 201, late.text
    assert (late.json()["accepted"], late.json()["rejected"]) == (0, 1)
    counts = await api.h.result("b-latebad")
    assert counts["succeeded"] == 2
