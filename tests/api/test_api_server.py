"""Serving with uvicorn: a port in use is a precise error, not an exit of the process."""

from __future__ import annotations

import socket

import httpx
import pytest
from fastapi import FastAPI

from fleetbatch.api.server import running_api
from fleetbatch.errors import ConfigError


async def test_serves_on_a_free_port_and_stops() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    async with running_api(app, "127.0.0.1", 0) as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/ping")).json() == "pong"
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"{url}/ping")


async def test_a_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            async with running_api(FastAPI(), "127.0.0.1", port):
                pass
    assert str(caught.value) == (
        f"the API did not start on 127.0.0.1:{port} (see the log above); "
        "FLEETBATCH_API_PORT chooses another port"
    )
