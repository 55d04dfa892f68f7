"""The API against hostile clients (issue 16): the caller is known before any body is
read, bodies are bounded, integers too, every answer carries the security headers,
and a 405 names every method of its path."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api_support import OPERATOR, VIEWER, Api, ApiFactory, api_vins, auth
from fleetbatch.api.headers import DOCS_POLICY

MIB = 1024 * 1024
LIMIT = 64 * 1024


class CountingBody:
    """A request body of ``chunks`` MiB that counts how much of it was read."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield b"x" * MIB


# -- authentication before the body ----------------------------------------------


async def test_a_stranger_s_body_is_not_read(api: Api) -> None:
    body = CountingBody(200)
    response = await api.http.post(
        "/api/batches/b1/cancel", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "missing bearer token"}
    assert body.read <= 1  # not 200 MiB, as before


async def test_a_garbage_body_without_a_token_is_401_not_400(api: Api) -> None:
    response = await api.http.post(
        "/api/batches/b1/cancel",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "missing bearer token"}
    response = await api.http.post(
        "/api/batches/b1/cancel",
        content=b"{not json",
        headers={"Content-Type": "application/json", **auth("wrong")},
    )
    assert (response.status_code, response.json()) == (401, {"detail": "invalid bearer token"})


async def test_an_unknown_api_path_needs_a_token_too(api: Api) -> None:
    response = await api.http.get("/api/nothing-here")
    assert response.status_code == 401


# -- body limits ------------------------------------------------------------------


async def test_a_json_body_past_the_limit_is_413_by_its_length(api: Api) -> None:
    response = await api.http.post(
        "/api/batches/b1/cancel",
        content=b" " * (LIMIT + 1),
        headers={**auth(OPERATOR), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "request body is larger than the limit of 65,536 bytes"}


async def test_a_streamed_body_past_the_limit_is_413_and_read_no_further(api: Api) -> None:
    body = CountingBody(50)  # no Content-Length: chunked
    response = await api.http.post(
        "/api/batches/b1/cancel",
        content=body,
        headers={**auth(OPERATOR), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "request body is larger than the limit of 65,536 bytes"}
    assert body.read == 1


async def test_the_login_form_is_bounded_too(api: Api) -> None:
    response = await api.http.post("/login", data={"token": "x" * (LIMIT + 1)})
    assert response.status_code == 413


async def test_a_body_within_the_limit_reaches_the_route(api: Api) -> None:
    response = await api.post("/api/batches/nope/cancel", json={"reason": "r" * 100})
    assert (response.status_code, response.json()) == (404, {"detail": "no batch 'nope'"})


async def test_uploads_keep_their_own_limit(api_factory: ApiFactory) -> None:
    async with api_factory(api_max_body_bytes=10) as api:
        response = await api.upload(api_vins(5))
        assert response.status_code == 201, response.text


async def test_a_json_body_that_is_not_utf8_is_422(api: Api) -> None:
    response = await api.http.post(
        "/api/batches/b1/cancel",
        content=b'{"reason": "\xff\xfe"}',
        headers={**auth(OPERATOR), "Content-Type": "application/json"},
    )
    assert response.status_code == 422  # was an undocumented 400
    assert response.json() == {"detail": "body: not UTF-8; a JSON body must be UTF-8 encoded"}


# -- integer parameters -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/api/batches?offset=9223372036854775808", "offset"),
        ("/api/batches/b1/items?after=9223372036854775808", "after"),
    ],
)
async def test_integers_past_64_bits_are_422(api: Api, url: str, name: str) -> None:
    response = await api.get(url)
    assert response.status_code == 422  # was 500 OverflowError
    assert response.json() == {
        "detail": f"query {name!r}: Input should be less than or equal to 9223372036854775807"
    }


async def test_the_largest_integers_are_answered(api: Api) -> None:
    response = await api.get("/api/batches?offset=9223372036854775807")
    assert response.status_code == 200
    assert response.json()["batches"] == []
    await api.h.submit(api_vins(2), batch_id="b-int")
    response = await api.get("/api/batches/b-int/items?after=9223372036854775807")
    assert (response.status_code, response.json()) == (200, {"items": [], "next_after": None})


async def test_ui_pages_bound_their_integers(api: Api) -> None:
    await api.h.submit(api_vins(2), batch_id="b-intui")
    login = await api.http.post("/login", data={"token": VIEWER, "next": "/"})
    assert login.status_code == 303
    for url in ("/?offset=9223372036854775808", "/batches/b-intui?after=9223372036854775808"):
        response = await api.http.get(url)
        assert response.status_code == 422, url
        assert "less than or equal to 9223372036854775807" in response.text, url


# -- security headers -------------------------------------------------------------


FIXED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


async def test_every_answer_has_the_security_headers(api: Api) -> None:
    answers = [
        await api.http.get("/healthz"),
        await api.http.get("/api/batches"),  # 401 from the guard
        await api.get("/api/batches"),
        await api.get("/api/batches/nope"),  # 404
        await api.http.get("/login"),
        await api.http.get("/static/style.css"),
        await api.http.get("/"),  # redirect to the login page
        await api.post("/api/batches/b1/cancel", content=b" " * (LIMIT + 1)),  # 413
    ]
    for response in answers:
        for name, value in FIXED.items():
            assert response.headers[name] == value, (response.request.url, name)
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "'unsafe-inline'" not in policy.split("style-src-attr")[0]


async def test_the_policy_covers_the_pages_inline_handlers(api: Api) -> None:
    """Every inline event handler on a page runs under the policy (its hash is in it),
    and there is no inline script or style element that it would block."""
    import base64
    import hashlib
    import html
    import re

    await api.h.submit(api_vins(2), batch_id="b-csp")
    await api.h.result("b-csp")
    await api.http.post("/login", data={"token": OPERATOR, "next": "/"})
    for url in ("/", "/upload", "/batches/b-csp", "/login"):
        response = await api.http.get(url)
        assert response.status_code == 200, url
        policy = response.headers["content-security-policy"]
        text = response.text
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>\s*\S", text), url
        assert "<style" not in text, url
        for match in re.finditer(r"""\son[a-z]+="([^"]*)\"""", text):
            digest = hashlib.sha256(html.unescape(match.group(1)).encode()).digest()
            assert f"'sha256-{base64.b64encode(digest).decode()}'" in policy, (url, match[0])
        for src in re.findall(r"""<script[^>]*\ssrc="([^"]+)\"""", text):
            assert src.startswith("/"), (url, src)  # from this site


async def test_the_docs_pages_have_their_own_policy(api: Api) -> None:
    response = await api.http.get("/docs")
    assert response.headers["content-security-policy"] == DOCS_POLICY
    assert "script-src 'self';" in DOCS_POLICY


async def test_production_adds_strict_transport_security(api_factory: ApiFactory) -> None:
    async with api_factory(environment="production") as api:
        response = await api.http.get("/healthz")
        assert response.headers["strict-transport-security"] == "max-age=31536000"


# -- 405 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("DELETE", "/api/batches", "GET, POST"),
        ("PUT", "/api/batches/b1", "GET"),
        ("GET", "/api/batches/b1/cancel", "POST"),
    ],
)
async def test_a_405_allows_every_method_of_its_path(
    api: Api, method: str, url: str, allow: str
) -> None:
    response = await api.http.request(method, url, headers=auth(OPERATOR))
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"detail": "Method Not Allowed"}


async def test_temporal_refusing_a_query_is_503_not_500(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from temporalio.service import RPCError, RPCStatusCode

    from fleetbatch.api import views

    async def full(*args: object) -> None:
        raise RPCError("consistent query buffer is full", RPCStatusCode.RESOURCE_EXHAUSTED, b"")

    await api.h.submit(api_vins(1), batch_id="b-503")
    monkeypatch.setattr(views, "snapshot", full)
    response = await api.get("/api/batches/b-503")
    assert response.status_code == 503
    assert response.json() == {"detail": "Temporal did not answer: consistent query buffer is full"}
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
async def test_a_priority_that_is_not_a_number_is_422(api: Api, value: str) -> None:
    response = await api.upload(api_vins(1), priority=value)
    assert response.status_code == 422
    assert response.json() == {"detail": "field 'priority': Input should be a finite number"}
