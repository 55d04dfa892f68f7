"""The web UI's session: a value standing for the token (never the token), Secure
outside development, forged or expired values refused; tokens a production
configuration refuses."""

from __future__ import annotations

from typing import Any

import pytest

from api_support import OPERATOR, VIEWER, Api, ApiFactory, auth
from fleetbatch.api import create_app
from fleetbatch.api.auth import TokenAuth
from fleetbatch.api.deps import SESSION_COOKIE
from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError

LONG = "a-long-enough-operator-token"


def _auth(**settings: Any) -> TokenAuth:
    return TokenAuth(Settings(environment="production", **settings))


async def _session(api: Api, token: str) -> str:
    response = await api.http.post("/login", data={"token": token, "next": "/"})
    assert response.status_code == 303, response.text
    return response.cookies[SESSION_COOKIE]


async def test_the_cookie_holds_a_session_not_the_token(api: Api) -> None:
    session = await _session(api, OPERATOR)
    assert OPERATOR not in session
    assert session.startswith("s1.")
    # Two logins, two sessions.
    api.http.cookies.clear()
    assert await _session(api, OPERATOR) != session


async def test_a_session_is_no_bearer_token_and_a_token_no_session(api: Api) -> None:
    session = await _session(api, VIEWER)
    api.http.cookies.clear()
    as_bearer = await api.http.get("/api/batches", headers=auth(session))
    assert as_bearer.status_code == 401
    # The old cookie, the raw token, no longer logs anyone in.
    api.http.cookies.set(SESSION_COOKIE, VIEWER)
    page = await api.http.get("/")
    assert page.status_code == 303
    api_call = await api.http.get("/api/batches")
    assert (api_call.status_code, api_call.json()) == (401, {"detail": "invalid bearer token"})


async def test_the_session_reads_pages_and_the_api(api: Api) -> None:
    await _session(api, VIEWER)
    assert (await api.http.get("/")).status_code == 200
    assert (await api.http.get("/api/batches")).status_code == 200  # the page's EventSource


async def test_a_forged_session_is_refused(api: Api) -> None:
    session = await _session(api, OPERATOR)
    body, _, mac = session.rpartition(".")
    version, expires, nonce = body.split(".")
    forged = [
        f"{version}.{int(expires) + 3600}.{nonce}.{mac}",  # longer life
        f"{body}.{'0' * len(mac)}",
        f"{body}.",
        "s1.1.x",
        "",
    ]
    for value in forged:
        api.http.cookies.clear()
        api.http.cookies.set(SESSION_COOKIE, value)
        response = await api.http.get("/")
        assert response.status_code == 303, value


def test_a_session_expires() -> None:
    auth_ = _auth(api_operator_tokens=[LONG], api_session_seconds=60)
    session = auth_.open_session(LONG, now=1000.0)
    assert session is not None
    assert auth_.session_principal(session, now=1059.0) is not None
    assert auth_.session_principal(session, now=1060.0) is None


def test_removing_a_token_ends_its_sessions() -> None:
    other = "another-long-operator-token"
    session = _auth(api_operator_tokens=[LONG, other]).open_session(LONG)
    assert _auth(api_operator_tokens=[LONG]).session_principal(session) is not None
    assert _auth(api_operator_tokens=[other]).session_principal(session) is None


def test_a_session_has_its_token_s_role() -> None:
    viewer, operator = "a-long-viewer-token-1", "a-long-operator-token-2"
    auth_ = _auth(api_viewer_tokens=[viewer], api_operator_tokens=[operator])
    seen = auth_.session_principal(auth_.open_session(viewer))
    assert seen is not None and not seen.is_operator
    acting = auth_.session_principal(auth_.open_session(operator))
    assert acting is not None and acting.is_operator
    assert seen.subject != acting.subject


async def test_the_cookie_is_secure_outside_development(api_factory: ApiFactory) -> None:
    async with api_factory(environment="production") as api:
        response = await api.http.post("/login", data={"token": OPERATOR, "next": "/"})
        cookie = response.headers["set-cookie"]
        assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Max-Age=43200" in cookie
    async with api_factory() as api:
        response = await api.http.post("/login", data={"token": OPERATOR, "next": "/"})
        assert "Secure" not in response.headers["set-cookie"]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("   ", "an API token is blank (only whitespace): remove it or give it a value"),
        ("\t", "an API token is blank (only whitespace): remove it or give it a value"),
        (
            " padded-operator-token ",
            "an API token starts or ends with whitespace, which HTTP headers drop: remove it",
        ),
        (
            "short",
            "an API token has 5 characters; production needs at least 16 (make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
        ),
    ],
)
def test_production_refuses_weak_tokens(token: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(Settings(environment="production", api_operator_tokens=[LONG, token]))
    assert str(caught.value) == message


def test_development_refuses_blank_tokens_but_takes_short_ones() -> None:
    with pytest.raises(ConfigError, match=r"^an API token is blank"):
        create_app(Settings(environment="development", api_viewer_tokens=["  "]))
    create_app(Settings(environment="development", api_viewer_tokens=["short"]))


async def test_a_blank_bearer_is_refused(api: Api) -> None:
    response = await api.http.get("/api/batches", headers={"Authorization": "Bearer    "})
    assert (response.status_code, response.json()) == (401, {"detail": "invalid bearer token"})
