"""No VIN in clear in Temporal (issue 16): per-VIN and chunked batches run with a key
ring on the dev server; every event of every history, read by a client without the
codec, and every search attribute are scanned for every VIN of the batch. With the
codec they decode; after a key rotation old histories still decode and replay; the
real Temporal CLI decodes through fleetbatch's codec server."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf.message import Message
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from external import free_port
from fleetbatch.api import create_app
from fleetbatch.api.server import running_api
from fleetbatch.config import Settings
from fleetbatch.keys import KeyHasher
from fleetbatch.pipelines import all_pipelines
from fleetbatch.pipelines.vehicle.simulators import Decision
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.temporal import DevServer
from fleetbatch.temporal.codec import ENCODING, KEY_ID, codec_for, data_converter
from fleetbatch.temporal.devserver import find_binary
from fleetbatch.workflows import WORKFLOWS
from support import Harness, harness

pytestmark = pytest.mark.integration

K1 = base64.b64encode(bytes(range(100, 132))).decode()
K2 = base64.b64encode(bytes(range(150, 182))).decode()
SECRET = "hash-secret-for-the-encryption-tests"
TOKEN = "codec-viewer-token-3b8e1f"
REPLAYED = [*WORKFLOWS, *(w for p in all_pipelines() for w in p.workflows())]


def enc_vins(n: int, start: int = 0) -> list[str]:
    """VINs of a maker no other test uses (the dev server is shared)."""
    return [make_vin(i, wmi="3CZ", vds="RE4H3") for i in range(start, start + n)]


def _settings(**changes: str) -> Settings:
    return Settings(**{"codec_keys": f"k1:{K1}", "key_hash_secret": SECRET, **changes})


async def _client(server: DevServer, settings: Settings) -> Client:
    return await Client.connect(server.address, data_converter=data_converter(settings))


def payloads_of(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every payload in ``message`` with where it is (``a.b[key]``). Search attributes
    are left out: the server must read them, they are scanned on their own."""
    for field, value in message.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            items = [(f"{path}{field.name}[{k}]", v) for k, v in value.items()]
        elif field.is_repeated:
            items = [(f"{path}{field.name}[]", v) for v in value]
        else:
            items = [(f"{path}{field.name}", value)]
        for where, v in items:
            if isinstance(v, Payload):
                yield where, v
            else:
                yield from payloads_of(v, f"{where}.")


MARKER_DATA = "marker_recorded_event_attributes.details[data].payloads[]"
"""The SDK core's own record of a local activity (sequence, attempt, activity type,
times), written in clear; the activity's input and result are elsewhere, encrypted."""


def _coded(payloads: list[tuple[str, Payload]]) -> list[Payload]:
    """The payloads a codec covers: all but the markers' own data, which is checked
    to be the core's record and nothing more."""
    coded = []
    for where, payload in payloads:
        if where == MARKER_DATA:
            assert set(json.loads(payload.data)) <= MARKER_FIELDS, payload.data
        else:
            coded.append(payload)
    return coded


MARKER_FIELDS = {
    *("seq", "attempt", "activity_id", "activity_type", "activation_index"),
    *("complete_time", "backoff", "original_schedule_time"),
}


async def _executions(raw: Client, task_queue: str, at_least: int) -> list[tuple[str, str]]:
    """(workflow id, run id) of every execution on the task queue, once visibility
    lists ``at_least`` and has stopped growing."""
    seen: list[tuple[str, str]] = []
    async with asyncio.timeout(30):
        while True:
            found = [
                (w.id, w.run_id) async for w in raw.list_workflows(f"TaskQueue = '{task_queue}'")
            ]
            if len(found) >= at_least and found == seen:
                return found
            seen = found
            await asyncio.sleep(0.5)


async def _histories(raw: Client, h: Harness, at_least: int) -> list[WorkflowHistory]:
    runs = await _executions(raw, h.settings.temporal_task_queue, at_least)
    return [await raw.get_workflow_handle(w, run_id=r).fetch_history() for w, r in runs]


async def _scan(
    raw: Client, h: Harness, histories: list[WorkflowHistory], batch: list[str]
) -> tuple[bytes, list[Payload], set[str]]:
    """Everything a client without the codec reads (each event's bytes, each execution's
    search attributes), the payloads in it, and the FleetbatchKeys values."""
    seen = bytearray()
    payloads: list[tuple[str, Payload]] = []
    keys: set[str] = set()
    for history in histories:
        seen += history.workflow_id.encode()
        for event in history.events:
            seen += event.SerializeToString()
            payloads += payloads_of(event)
        described = await raw.get_workflow_handle(history.workflow_id).describe()
        info = described.raw_description.workflow_execution_info
        seen += info.SerializeToString()
        for key, value in described.search_attributes.items():
            if key == "FleetbatchKeys":
                keys.update(str(v) for v in value)
    return bytes(seen), _coded(payloads), keys


async def test_no_vin_in_clear_in_any_history_or_search_attribute(
    dev_server: DevServer, tmp_path: Path
) -> None:
    per_vin, chunked = enc_vins(4), enc_vins(30, start=100)
    everything = per_vin + chunked
    settings = _settings()
    client = await _client(dev_server, settings)
    raw = await Client.connect(dev_server.address)  # no codec: what the server holds
    async with harness(
        client,
        tmp_path,
        denied_vins=[chunked[0]],
        decide=lambda m: Decision.FAIL if m.vin == chunked[1] else Decision.SUCCEED,
        write_shards=2,
        codec_keys=f"k1:{K1}",
        key_hash_secret=SECRET,
    ) as h:
        one = await h.submit(per_vin, chunk_size=1)
        ten = await h.submit(chunked, chunk_size=10)
        assert (await h.result(one.batch_id))["succeeded"] == 4
        counts = await h.result(ten.batch_id)
        assert counts["succeeded"] == 28 and counts["skipped"] == 1 and counts["failed"] == 1
        # 2 batches, 4 + 3 chunks, and the write batchers of the per-VIN chunks.
        histories = await _histories(raw, h, at_least=9)
        seen, payloads, keys = await _scan(raw, h, histories, everything)
        codec = codec_for(settings)
        assert codec is not None
        decoded = b"".join(p.SerializeToString() for p in await codec.decode(payloads))
        api = create_app(
            settings.model_copy(update={"api_viewer_tokens": [SecretStr(TOKEN)]}),
            store=h.store,
            client=h.client,
        )
        async with running_api(api, "127.0.0.1", free_port()) as url:
            chunk_id = (await h.items(one.batch_id))[per_vin[0]]["workflow_id"]
            shown, bare = await asyncio.gather(
                asyncio.to_thread(_show, dev_server, chunk_id, f"{url}/codec"),
                asyncio.to_thread(_show, dev_server, chunk_id, None),
            )

    assert {p.metadata["encoding"] for p in payloads} == {ENCODING}
    assert {p.metadata[KEY_ID] for p in payloads} == {b"k1"}
    leaked = [vin for vin in everything if vin.encode() in seen]
    assert leaked == [], f"VINs in clear in Temporal: {leaked}"
    assert all(vin.encode() in decoded for vin in everything)
    assert keys == set(KeyHasher(SECRET.encode()).hashes(everything))
    # The Temporal CLI shows the chunk's VIN through the codec server, and not without.
    assert per_vin[0] in shown
    assert per_vin[0] not in bare and "binary/encrypted" in bare


def _show(server: DevServer, workflow_id: str, codec_endpoint: str | None) -> str:
    command = [
        str(find_binary("temporal")),
        *("workflow", "show", "--workflow-id", workflow_id, "--address", server.address),
        "--detailed",
    ]
    if codec_endpoint is not None:
        command += ["--codec-endpoint", codec_endpoint, "--codec-auth", f"Bearer {TOKEN}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_histories_under_a_retired_active_key_decode_and_replay(
    dev_server: DevServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before, after = enc_vins(5, start=200), enc_vins(5, start=300)
    rings = {"old": {"codec_keys": f"k1:{K1}"}, "rotated": {"codec_keys": f"k1:{K1},k2:{K2}"}}
    rings["rotated"]["codec_active_key"] = "k2"
    raw = await Client.connect(dev_server.address)
    histories: list[WorkflowHistory] = []
    for ring, batch in (("old", before), ("rotated", after)):
        client = await _client(dev_server, _settings(**rings[ring]))
        async with harness(
            client, tmp_path, key_hash_secret=SECRET, chunk_size=5, **rings[ring]
        ) as h:
            assert (await h.result((await h.submit(batch)).batch_id))["succeeded"] == 5
            histories += await _histories(raw, h, at_least=2)
    rotated = _settings(**rings["rotated"])
    replayer = Replayer(workflows=REPLAYED, data_converter=data_converter(rotated))
    codec = codec_for(rotated)
    assert codec is not None
    by_key: dict[bytes, bytes] = {b"k1": b"", b"k2": b""}
    for history in histories:
        await replayer.replay_workflow(history)  # raises on any decode or replay failure
        for event in history.events:
            for payload in _coded(list(payloads_of(event))):
                (plain,) = await codec.decode([payload])
                by_key[payload.metadata[KEY_ID]] += plain.SerializeToString()
    assert all(vin.encode() in by_key[b"k1"] for vin in before)
    assert all(vin.encode() in by_key[b"k2"] for vin in after)
    assert not any(vin.encode() in by_key[b"k1"] for vin in after)
    # The replay decodes for real: without the retired key it fails, naming it.
    retired = Replayer(
        workflows=REPLAYED, data_converter=data_converter(_settings(codec_keys=f"k2:{K2}"))
    )
    failed = await retired.replay_workflow(histories[0], raise_on_replay_failure=False)
    assert failed.replay_failure is not None
    assert "payload encrypted with key 'k1', which is not in the key ring (k2)" in caplog.text


async def test_the_embedded_web_ui_decodes_through_the_api(tmp_path: Path) -> None:
    from fleetbatch.stack import dev_server_for

    plain = Settings(data_dir=tmp_path, dev_server_persist=False)
    assert dev_server_for(plain).ui_codec_endpoint is None
    settings = _settings(
        data_dir=str(tmp_path),
        dev_server_port=str(free_port()),
        dev_server_ui_port=str(free_port()),
        dev_server_persist="false",
        api_host="0.0.0.0",
        api_port="8123",
    )
    server = dev_server_for(settings)
    await server.start()
    try:
        async with httpx.AsyncClient() as http:
            ui = (await http.get(f"{server.ui_url}/api/v1/settings")).json()
    finally:
        server.stop()
    assert ui["Codec"]["Endpoint"] == "http://127.0.0.1:8123/codec"
