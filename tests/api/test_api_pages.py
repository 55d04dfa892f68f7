"""The web UI's server side: login with a token cookie, roles on pages and forms,
uploads through the form, and error pages."""

from __future__ import annotations

from api_support import OPERATOR, VIEWER, Api, api_vins
from fleetbatch.api.deps import TOKEN_COOKIE
from support import csv_bytes


async def _login(api: Api, token: str) -> None:
    response = await api.http.post("/login", data={"token": token, "next": "/"})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}={token};")
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
        files={"file": ("v.csv", b"vin\n<script>alert(1)</script>\n", "text/csv")},
        data={"command": "lock_doors"},
    )
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
