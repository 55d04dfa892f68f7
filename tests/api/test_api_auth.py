"""Bearer tokens and roles: 401 for a missing or unknown token, 403 for the wrong role,
and no start outside development without tokens."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from api_support import OPERATOR, VIEWER, Api, ApiFactory, auth
from fleetbatch.api import create_app
from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError

CHALLENGE = 'Bearer realm="fleetbatch"'


async def test_missing_token_is_401_with_a_challenge(api: Api) -> None:
    response = await api.http.get("/api/batches")
    assert response.status_code == 401
    assert response.json() == {"detail": "missing bearer token"}
    assert response.headers["www-authenticate"] == CHALLENGE


@pytest.mark.parametrize(
    "header", ["Bearer nope", f"Bearer {VIEWER}x", f"Basic {VIEWER}", "Bearer"]
)
async def test_unknown_token_is_401_invalid_token(api: Api, header: str) -> None:
    response = await api.http.get("/api/batches", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid bearer token"}
    assert response.headers["www-authenticate"] == f'{CHALLENGE}, error="invalid_token"'


async def test_viewer_reads_but_may_not_act(api: Api) -> None:
    listed = await api.get("/api/batches", VIEWER)
    assert listed.status_code == 200
    assert listed.json() == {"batches": [], "total": 0, "limit": 50, "offset": 0}

    for url in ("/api/batches", "/api/batches/b1/pause", "/api/batches/b1/redrive"):
        response = await api.post(url, VIEWER)
        assert response.status_code == 403, url
        assert response.json() == {
            "detail": "this needs the operator role; your token has the viewer role"
        }


async def test_operator_may_read_and_act(api: Api) -> None:
    assert (await api.get("/api/batches", OPERATOR)).status_code == 200
    # Past the role check: the batch is unknown.
    response = await api.post("/api/batches/b1/pause", OPERATOR)
    assert response.status_code == 404
    assert response.json() == {"detail": "no batch 'b1'"}


async def test_health_needs_no_token(api: Api) -> None:
    response = await api.http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "checks": {}})


def test_refuses_to_start_in_production_without_tokens(dev_client: Client) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(Settings(environment="production"))
    assert str(caught.value) == (
        "no API tokens configured in production: set FLEETBATCH_API_OPERATOR_TOKENS "
        "(and FLEETBATCH_API_VIEWER_TOKENS), or FLEETBATCH_ENVIRONMENT=development for "
        "open access on this machine"
    )


def test_refuses_an_empty_token() -> None:
    with pytest.raises(ConfigError, match=r"^an API token is empty: remove it or give it a value$"):
        create_app(Settings(environment="production", api_operator_tokens=[""]))


def test_production_with_tokens_starts() -> None:
    create_app(Settings(environment="production", api_viewer_tokens=[VIEWER]))


async def test_development_without_tokens_is_open(api_factory: ApiFactory) -> None:
    async with api_factory(api_viewer_tokens=[], api_operator_tokens=[]) as open_api:
        response = await open_api.http.get("/api/batches")
        assert response.status_code == 200
        # Any token is as good as none: everyone is an operator.
        response = await open_api.http.post("/api/batches/b1/pause", headers=auth("whatever"))
        assert (response.status_code, response.json()) == (404, {"detail": "no batch 'b1'"})
