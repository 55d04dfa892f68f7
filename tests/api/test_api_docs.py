"""The API docs come from this site (no CDN) and, in production, only to a caller
with a token or a session."""

from __future__ import annotations

import re

from api_support import VIEWER, Api, ApiFactory, auth


def _external(page: str) -> list[str]:
    return [url for url in re.findall(r"""(?:src|href)="([^"]+)\"""", page) if "//" in url]


async def test_swagger_ui_is_served_from_this_site(api: Api) -> None:
    response = await api.http.get("/docs")
    assert response.status_code == 200
    page = response.text
    assert _external(page) == []  # was cdn.jsdelivr.net
    assert '<script src="/docs/assets/swagger-ui-bundle.js"></script>' in page
    assert '<script src="/static/swagger-init.js"></script>' in page
    assert '<link rel="stylesheet" href="/docs/assets/swagger-ui.css">' in page
    assert not re.search(r"<script>", page)  # nothing inline: the policy allows none
    for asset, kind in (
        ("/docs/assets/swagger-ui-bundle.js", "javascript"),
        ("/docs/assets/swagger-ui.css", "text/css"),
        ("/static/swagger-init.js", "javascript"),
    ):
        served = await api.http.get(asset)
        assert served.status_code == 200, asset
        assert kind in served.headers["content-type"], asset
    init = (await api.http.get("/static/swagger-init.js")).text
    assert "SwaggerUIBundle(" in init and "root.dataset.spec" in init


async def test_redoc_is_served_from_this_site(api: Api) -> None:
    response = await api.http.get("/redoc")
    assert response.status_code == 200
    assert _external(response.text) == []
    assert '<redoc spec-url="/openapi.json"></redoc>' in response.text
    bundle = await api.http.get("/docs/assets/redoc.standalone.js")
    assert bundle.status_code == 200
    assert len(bundle.content) > 500_000


async def test_the_spec_is_the_app_s(api: Api) -> None:
    response = await api.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "fleetbatch"
    assert "/api/batches" in response.json()["paths"]


async def test_production_docs_need_a_token_or_a_session(api_factory: ApiFactory) -> None:
    async with api_factory(environment="production") as api:
        for page in ("/docs", "/redoc"):
            response = await api.http.get(page)
            assert response.status_code == 303, page
            assert response.headers["location"] == f"/login?next={page}"
        spec = await api.http.get("/openapi.json")
        assert (spec.status_code, spec.json()) == (401, {"detail": "missing bearer token"})
        bad = await api.http.get("/openapi.json", headers=auth("not-a-token"))
        assert (bad.status_code, bad.json()) == (401, {"detail": "invalid bearer token"})

        assert (await api.http.get("/openapi.json", headers=auth(VIEWER))).status_code == 200
        assert (await api.http.get("/docs", headers=auth(VIEWER))).status_code == 200
        login = await api.http.post("/login", data={"token": VIEWER, "next": "/docs"})
        assert login.headers["location"] == "/docs"
        # httpx keeps a Secure cookie for https only: hand it over as the browser would.
        session = login.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
        api.http.cookies.set("fleetbatch_session", session)
        assert (await api.http.get("/docs")).status_code == 200
        assert (await api.http.get("/openapi.json")).status_code == 200
