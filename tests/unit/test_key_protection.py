"""Item keys out of what the codec does not cover: keyed hashes, production's
refusal to run without keys, log lines, and `fleetbatch find`."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
from typer.testing import CliRunner

from fleetbatch.cli.find import visibility_query, web_ui_link
from fleetbatch.cli.main import app
from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError
from fleetbatch.keys import KeyHasher
from fleetbatch.telemetry import ItemKeyFilter, JsonFormatter, protect_logged_keys

SECRET = "a-hash-secret-of-32-characters!!"
KEY = "c2VjcmV0LWtleS1vZi10aGlydHktdHdvLWJ5dGVzISE="  # 32 bytes
VIN = "1HGCM82633A004352"


def _hash(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()[:16]


def test_keyed_hash_is_hmac_sha256_cut_to_16_hex_digits() -> None:
    hasher = KeyHasher(SECRET.encode())
    assert hasher.hash(VIN) == _hash(SECRET, VIN)
    assert hasher.hash(VIN) != KeyHasher(b"another-secret-of-some-length").hash(VIN)
    assert hasher.hashes([VIN, "X"]) == [_hash(SECRET, VIN), _hash(SECRET, "X")]
    with pytest.raises(ConfigError, match="FLEETBATCH_KEY_HASH_SECRET: give at least 16 bytes"):
        Settings(key_hash_secret="short")


def test_production_refuses_to_connect_without_keys() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings(environment="production").check_protection()
    assert str(refused.value) == (
        "production keeps vehicle identifiers out of Temporal, but FLEETBATCH_CODEC_KEYS "
        "(payload encryption keys, id:base64key) and FLEETBATCH_KEY_HASH_SECRET (the item "
        "keys' HMAC secret) are not set (generate one with: openssl rand -base64 32); "
        "see docs/security.md"
    )
    with pytest.raises(ConfigError, match=r"but FLEETBATCH_KEY_HASH_SECRET \(the item keys"):
        Settings(environment="production", codec_keys=f"k1:{KEY}").check_protection()
    Settings(
        environment="production", codec_keys=f"k1:{KEY}", key_hash_secret=SECRET
    ).check_protection()
    Settings().check_protection()  # development may run in clear


async def test_connect_checks_protection_before_dialling() -> None:
    from fleetbatch.temporal import connect

    with pytest.raises(ConfigError, match="production keeps vehicle identifiers out"):
        await connect(Settings(environment="production", temporal_address="127.0.0.1:1"))


def _line(hasher_settings: Settings) -> dict[str, object]:
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "item failed: %s", ("x",), None)
    record.__dict__.update(vin=VIN, item_id=42, batch_id="b1")
    if not hasher_settings.plain_keys_in_logs:
        ItemKeyFilter(hasher_settings.key_hasher).filter(record)
    line: dict[str, object] = json.loads(JsonFormatter().format(record))
    return line


def test_logs_name_items_by_id_and_hash_outside_development() -> None:
    production = Settings(environment="production", key_hash_secret=SECRET)
    line = _line(production)
    assert line["item_id"] == 42 and line["key_hash"] == _hash(SECRET, VIN)
    assert VIN not in json.dumps(line)
    opted_out = _line(Settings(log_plain_keys=False))  # development without a secret
    assert "vin" not in opted_out and "key_hash" not in opted_out
    assert _line(Settings())["vin"] == VIN  # development keeps them readable


def test_protect_logged_keys_filters_every_root_handler(caplog: pytest.LogCaptureFixture) -> None:
    root = logging.getLogger()
    handler = logging.Handler()
    root.addHandler(handler)
    try:
        protect_logged_keys(Settings(environment="production", key_hash_secret=SECRET))
        assert any(isinstance(f, ItemKeyFilter) for f in handler.filters)
        protect_logged_keys(Settings())
        assert not any(isinstance(f, ItemKeyFilter) for f in handler.filters)
    finally:
        root.removeHandler(handler)


def test_find_prints_the_hashed_query_and_the_web_ui_link(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(key_hash_secret=SECRET, temporal_ui_url="https://temporal.example/")
    query = visibility_query(s, VIN)
    assert query == f"FleetbatchKeys = '{_hash(SECRET, VIN)}'"
    assert web_ui_link(s, query) == (
        "https://temporal.example/namespaces/default/workflows?query="
        f"FleetbatchKeys%20%3D%20%27{_hash(SECRET, VIN)}%27"
    )
    assert visibility_query(Settings(), VIN) == f"FleetbatchKeys = '{VIN}'"
    monkeypatch.setenv("FLEETBATCH_KEY_HASH_SECRET", SECRET)
    out = CliRunner().invoke(app, ["find", f" {VIN.lower()} "]).output
    assert f"query:  FleetbatchKeys = '{_hash(SECRET, VIN)}'" in out
    assert VIN not in out and VIN.lower() not in out
