"""The codec server: Temporal's remote codec protocol behind the API's tokens, with
CORS for the configured Temporal Web UI origin and nobody else."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client

from fleetbatch.api import create_app
from fleetbatch.config import Settings
from fleetbatch.store import Store
from fleetbatch.temporal.codec import codec_for
from fleetbatch.temporal.converter import DATA_CONVERTER

KEY = base64.b64encode(bytes(range(7, 39))).decode()
VIEWER = "codec-viewer-token-5c1e9a"
UI = "https://temporal.example"
VIN = "5WBUXAPT0K1000017"


@contextlib.asynccontextmanager
async def codec_api(
    dev_client: Client, tmp_path: Path, **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    given: dict[str, Any] = {
        "codec_keys": f"k1:{KEY}",
        "codec_cors_origins": [UI],
        "api_viewer_tokens": [SecretStr(VIEWER)],
    }
    settings = Settings(data_dir=tmp_path, **(given | changes))
    store = await Store.open(f"sqlite:///{tmp_path / 'codec.db'}", settings.breaker_policy)
    app = create_app(settings, store=store, client=dev_client)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http
    finally:
        await store.close()


def _body(*values: object) -> dict[str, Any]:
    payloads = Payloads(payloads=DATA_CONVERTER.payload_converter.to_payloads(list(values)))
    body: dict[str, Any] = json_format.MessageToDict(payloads)
    return body


def _values(body: dict[str, Any]) -> list[Any]:
    payloads = json_format.ParseDict(body, Payloads()).payloads
    return DATA_CONVERTER.payload_converter.from_payloads(payloads)


BEARER = {"Authorization": f"Bearer {VIEWER}"}


async def test_encode_then_decode_round_trips_and_hides_the_data(
    dev_client: Client, tmp_path: Path
) -> None:
    async with codec_api(dev_client, tmp_path) as http:
        encoded = await http.post("/codec/encode", json=_body({"keys": [VIN]}, 3), headers=BEARER)
        assert encoded.status_code == 200, encoded.text
        assert VIN not in encoded.text
        sealed = encoded.json()["payloads"]
        assert [base64.b64decode(p["metadata"]["encoding"]) for p in sealed] == [
            b"binary/encrypted"
        ] * 2
        decoded = await http.post("/codec/decode", json=encoded.json(), headers=BEARER)
        assert decoded.status_code == 200, decoded.text
        assert _values(decoded.json()) == [{"keys": [VIN]}, 3]
        # What the workers encrypted decodes the same (the same ring, another codec).
        codec = codec_for(Settings(codec_keys=f"k1:{KEY}"))
        assert codec is not None
        theirs = await codec.encode(DATA_CONVERTER.payload_converter.to_payloads([VIN]))
        body = json_format.MessageToDict(Payloads(payloads=theirs))
        answer = await http.post("/codec/decode", json=body, headers=BEARER)
        assert _values(answer.json()) == [VIN]


async def test_a_chunk_sized_body_passes_the_json_limit(dev_client: Client, tmp_path: Path) -> None:
    """The API's JSON bodies stop at 64 KiB; a chunk's payloads for the Temporal UI
    are bigger, and the codec server bounds its bodies itself (8 MiB)."""
    async with codec_api(dev_client, tmp_path, api_max_body_bytes=65_536) as http:
        keys = [f"{VIN[:-4]}{n:04d}" for n in range(5_000)]  # ~100 KB of JSON
        encoded = await http.post("/codec/encode", json=_body({"keys": keys}), headers=BEARER)
        assert encoded.status_code == 200, encoded.text[:200]
        decoded = await http.post("/codec/decode", json=encoded.json(), headers=BEARER)
        assert decoded.status_code == 200
        assert _values(decoded.json()) == [{"keys": keys}]


async def test_codec_needs_a_token(dev_client: Client, tmp_path: Path) -> None:
    async with codec_api(dev_client, tmp_path) as http:
        for path in ("/codec/decode", "/codec/encode"):
            missing = await http.post(path, json=_body(VIN))
            assert missing.status_code == 401
            assert missing.json() == {"detail": "missing bearer token"}
            wrong = await http.post(path, json=_body(VIN), headers={"Authorization": "Bearer x"})
            assert wrong.status_code == 401
            assert wrong.json() == {"detail": "invalid bearer token"}


async def test_bad_bodies_and_unknown_keys_are_400s(dev_client: Client, tmp_path: Path) -> None:
    async with codec_api(dev_client, tmp_path) as http:
        garbage = await http.post("/codec/decode", content=b"{nope", headers=BEARER)
        assert garbage.status_code == 400
        assert garbage.json()["detail"].startswith('body: not {"payloads": [...]}')
        other = codec_for(Settings(codec_keys=f"k9:{KEY}"))
        assert other is not None
        sealed = await other.encode(DATA_CONVERTER.payload_converter.to_payloads([VIN]))
        body = json_format.MessageToDict(Payloads(payloads=sealed))
        unknown = await http.post("/codec/decode", json=body, headers=BEARER)
        assert unknown.status_code == 400
        assert unknown.json() == {
            "detail": "payload encrypted with key 'k9', which is not in the key ring (k1): "
            "add it to FLEETBATCH_CODEC_KEYS"
        }


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
}


async def test_cors_preflight_answers_the_configured_origin_only(
    dev_client: Client, tmp_path: Path
) -> None:
    async with codec_api(dev_client, tmp_path) as http:
        allowed = await http.options("/codec/decode", headers={"Origin": UI, **PREFLIGHT})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == UI
        assert allowed.headers["access-control-allow-methods"] == "POST"
        assert allowed.headers["access-control-allow-headers"] == (
            "Authorization, Content-Type, X-Namespace"
        )
        assert allowed.headers["access-control-allow-credentials"] == "true"
        for origin in ("https://evil.example", "https://temporal.example.evil", "null"):
            denied = await http.options("/codec/decode", headers={"Origin": origin, **PREFLIGHT})
            assert denied.status_code == 403
            assert "access-control-allow-origin" not in denied.headers
        # The answers themselves, errors included, carry the origin for the UI only.
        ok = await http.post("/codec/decode", json=_body(VIN), headers={"Origin": UI, **BEARER})
        assert ok.headers["access-control-allow-origin"] == UI
        assert ok.headers["vary"] == "Origin"
        refused = await http.post("/codec/decode", json=_body(VIN), headers={"Origin": UI})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == UI
        foreign = await http.post(
            "/codec/decode", json=_body(VIN), headers={"Origin": "https://evil.example", **BEARER}
        )
        assert "access-control-allow-origin" not in foreign.headers
        # No other route answers cross-origin.
        batches = await http.get("/api/batches", headers={"Origin": UI, **BEARER})
        assert "access-control-allow-origin" not in batches.headers


async def test_cors_origin_defaults_to_the_temporal_web_ui(
    dev_client: Client, tmp_path: Path
) -> None:
    async with codec_api(dev_client, tmp_path, codec_cors_origins=[]) as http:
        ui = "http://127.0.0.1:8233"  # the embedded dev server's UI
        allowed = await http.options("/codec/encode", headers={"Origin": ui, **PREFLIGHT})
        assert allowed.headers["access-control-allow-origin"] == ui
        other = await http.options("/codec/encode", headers={"Origin": UI, **PREFLIGHT})
        assert other.status_code == 403


async def test_without_keys_the_codec_passes_payloads_through(
    dev_client: Client, tmp_path: Path
) -> None:
    async with codec_api(dev_client, tmp_path, codec_keys=None) as http:
        answer = await http.post("/codec/encode", json=_body(VIN), headers=BEARER)
        assert _values(answer.json()) == [VIN]
        assert answer.json() == _body(VIN)
