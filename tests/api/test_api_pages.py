"""The web UI's server side: login with a token cookie, roles on pages and forms,
uploads through the form, and error pages."""

from __future__ import annotations

from api_support import (
    ENRICHMENT,
    OPERATOR,
    VIEWER,
    Api,
    ApiFactory,
    api_users,
    api_vins,
    users_csv,
)
from fleetbatch.api.deps import SESSION_COOKIE
from fleetbatch.services.outputs import output_files
from support import csv_bytes


async def _login(api: Api, token: str) -> None:
    response = await api.http.post("/login", data={"token": token, "next": "/"})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=s1.")
    assert token not in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


async def test_pages_send_strangers_to_the_login_page(api: Api) -> None:
    response = await api.http.get("/batches/b1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/batches/b1"
    # A bearer header is for the API; pages read the login cookie only.
    response = await api.http.get("/", headers={"Authorization": f"Bearer {OPERATOR}"})
    assert response.status_code == 303


async def test_a_bad_token_does_not_log_in(api: Api) -> None:
    response = await api.http.post("/login", data={"token": "nope", "next": "/"})
    assert response.status_code == 401
    assert 'id="error">invalid token<' in response.text
    assert "set-cookie" not in response.headers


async def test_next_stays_on_this_site(api: Api) -> None:
    response = await api.http.post("/login", data={"token": VIEWER, "next": "//evil.example"})
    assert response.headers["location"] == "/"


async def test_viewer_sees_batches_but_no_controls(api: Api) -> None:
    await api.h.submit(api_vins(3), batch_id="b-view")
    await api.h.result("b-view")
    await _login(api, VIEWER)
    listing = await api.http.get("/")
    assert listing.status_code == 200
    assert 'href="/batches/b-view"' in listing.text
    assert 'href="/upload"' not in listing.text
    page = await api.http.get("/batches/b-view")
    assert page.status_code == 200
    assert 'id="pause"' not in page.text and 'id="report-link"' in page.text
    refused = await api.http.post("/batches/b-view/pause")
    assert refused.status_code == 403
    assert 'id="error">pause needs the operator role<' in refused.text
    upload = await api.http.post("/upload", files={"file": ("v.csv", b"vin\n")})
    assert upload.status_code == 403


async def test_operator_uploads_through_the_form_and_steers(api: Api) -> None:
    await _login(api, OPERATOR)
    response = await api.http.post(
        "/upload",
        files={"file": ("v.csv", csv_bytes([*api_vins(2), "bad"]), "text/csv")},
        data={"command": "lock_doors", "batch_id": "b-form", "chunk_size": ""},
    )
    assert response.status_code == 201
    assert "<strong>2</strong> accepted" in response.text
    assert "<td>4</td><td>bad</td><td>VIN must be 17 characters, got 3</td>" in response.text
    await api.h.result("b-form")
    finished = await api.http.post("/batches/b-form/pause")
    assert finished.status_code == 409
    assert "batch &#39;b-form&#39; is not running" in finished.text

    bad = await api.http.post(
        "/upload", files={"file": ("v.csv", b"serial\n1\n", "text/csv")}, data={"command": "x"}
    )
    assert bad.status_code == 422
    assert "unknown command &#39;x&#39;" in bad.text


async def test_unknown_batch_page_is_404(api: Api) -> None:
    await _login(api, VIEWER)
    response = await api.http.get("/batches/nope")
    assert response.status_code == 404
    assert 'id="error">no batch &#39;nope&#39;<' in response.text


async def test_values_are_escaped(api: Api) -> None:
    await _login(api, OPERATOR)
    response = await api.http.post(
        "/upload",
        files={"file": ("v.csv", csv_bytes(["<script>alert(1)</script>", *api_vins(1)]))},
        data={"command": "lock_doors"},
    )
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


async def test_upload_page_offers_both_pipelines(api: Api) -> None:
    await _login(api, OPERATOR)
    response = await api.http.get("/upload")
    assert response.status_code == 200
    page = response.text
    assert '<select name="pipeline" id="pipeline">' in page
    assert '<option value="vehicle">vehicle: ' in page
    assert '<option value="enrich">enrich: ' in page
    # Chosen unless changed: the batch's pipeline for a late file, vehicle for a new batch.
    assert (
        '<select name="pipeline" id="pipeline">\n      <option value="">(the batch\'s, '
        "for an existing batch; vehicle for a new one)</option>"
    ) in page
    assert '<option value="lock_doors">lock_doors</option>' in page
    assert '<select name="format" id="format">' in page
    assert '<option value="csv">csv</option>' in page


async def test_enrich_upload_through_the_form_and_its_batch_page(
    api_factory: ApiFactory,
) -> None:
    users = api_users(3, 300)
    async with api_factory(enrichment=ENRICHMENT) as api:
        await _login(api, OPERATOR)
        response = await api.http.post(
            "/upload",
            files={
                "file": (
                    "users.csv",
                    users_csv([*users, ("", "x@example.com", "fr")]),
                    "text/csv",
                )
            },
            data={"pipeline": "enrich", "command": "", "batch_id": "b-form-en", "format": ""},
        )
        assert response.status_code == 201, response.text
        assert "(enrich: enrich): <strong>3</strong> accepted" in response.text
        assert "<td>5</td><td>x@example.com</td><td>missing user_id</td>" in response.text
        await api.h.result("b-form-en")

        page = await api.http.get("/batches/b-form-en")
        assert page.status_code == 200
        text = page.text
        assert '<span id="pipeline">enrich</span> pipeline' in text
        assert '<span id="label">enrich</span>' in text
        assert "<th>Line</th><th>user_id</th><th>Status</th>" in text
        assert '<label>user_id <input type="search" name="key" id="key-search"' in text
        for user_id, _, _ in users:
            item = f"/batches/b-form-en/items/{user_id}"
            assert f'<td class="key"><a href="{item}">{user_id}</a></td>' in text
        assert 'id="breaker"' not in text
        outputs = [f.name for f in await output_files(api.h.store, api.h.settings, "b-form-en")]
        assert outputs
        assert '<ul id="outputs">' in text
        for name in outputs:
            assert f'href="/api/batches/b-form-en/outputs/{name}" download>{name}</a>' in text
        # The page's links work with the login cookie.
        download = await api.http.get(f"/api/batches/b-form-en/outputs/{outputs[0]}")
        assert download.status_code == 200
        assert users[0][0] in download.text

        found = await api.http.get("/batches/b-form-en", params={"key": users[1][0]})
        assert found.text.count('<td class="key">') == 1
        link = f'<a href="/batches/b-form-en/items/{users[1][0]}">{users[1][0]}</a>'
        assert f'<td class="key">{link}</td>' in found.text

        listing = await api.http.get("/", params={"label": "enrich"})
        assert 'href="/batches/b-form-en"' in listing.text
        assert "<td>enrich</td>" in listing.text
        listing = await api.http.get("/", params={"pipeline": "enrich"})
        assert 'href="/batches/b-form-en"' in listing.text
        assert '<option value="enrich" selected>enrich</option>' in listing.text
        listing = await api.http.get("/", params={"pipeline": "vehicle"})
        assert 'href="/batches/b-form-en"' not in listing.text
        assert "No batches match." in listing.text


async def test_vehicle_batch_page_names_vins_and_has_no_result_files(api: Api) -> None:
    await api.h.submit(api_vins(2, 30), batch_id="b-vpage")
    await api.h.result("b-vpage")
    await _login(api, VIEWER)
    page = await api.http.get("/batches/b-vpage")
    assert page.status_code == 200
    assert '<span id="pipeline">vehicle</span> pipeline' in page.text
    assert '<span id="label">lock_doors</span>' in page.text
    assert "<th>Line</th><th>VIN</th><th>Status</th>" in page.text
    assert page.text.count('<td class="key">') == 2
    assert 'breaker <span id="breaker">closed</span>' in page.text
    assert 'id="outputs"' not in page.text


async def test_an_unknown_pipeline_through_the_form_is_422(api: Api) -> None:
    await _login(api, OPERATOR)
    response = await api.http.post(
        "/upload",
        files={"file": ("users.csv", users_csv(api_users(1)), "text/csv")},
        data={"pipeline": "enrch"},
    )
    assert response.status_code == 422
    assert (
        'id="error">unknown pipeline &#39;enrch&#39;; did you mean &#39;enrich&#39;? '
        "(known: enrich, vehicle)<"
    ) in response.text
    bad = await api.http.post(
        "/upload",
        files={"file": ("users.csv", users_csv(api_users(1)), "text/csv")},
        data={"pipeline": "enrich", "format": "xml"},
    )
    assert bad.status_code == 422
    assert 'id="error">unknown output format &#39;xml&#39;: use jsonl or csv<' in bad.text
