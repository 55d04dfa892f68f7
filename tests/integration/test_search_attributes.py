"""Search attributes against a Temporal that lacks them (issue 14.8): a worker
started on a fresh namespace of the dev server registers them; a server that refuses
(simulated: the operator call answers PERMISSION_DENIED or UNIMPLEMENTED, as a
cluster's authorizer or Temporal Cloud does) makes it refuse to start, with the exact
commands, and those commands, run with the Temporal CLI, register them."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from fleetbatch.errors import ConfigError
from fleetbatch.temporal import DevServer, ensure_search_attributes
from fleetbatch.temporal.converter import DATA_CONVERTER
from fleetbatch.temporal.devserver import find_binary

pytestmark = pytest.mark.integration

EXPECTED = {
    "FleetbatchBatchId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "FleetbatchPipeline": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "FleetbatchKeys": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "FleetbatchCommand": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}


async def fresh_namespace(server: DevServer) -> Client:
    """A namespace of its own on the dev server, once it serves calls; its client."""
    name = f"sa-{uuid.uuid4().hex[:12]}"
    admin = await Client.connect(server.address)
    await admin.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    client = await Client.connect(server.address, namespace=name, data_converter=DATA_CONVERTER)
    async with asyncio.timeout(30):
        while True:
            try:
                await client.count_workflows()
                await custom_attributes(client)
                return client
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
            await asyncio.sleep(0.2)


async def custom_attributes(client: Client) -> dict[str, int]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return dict(listed.custom_attributes)


def refusing(status: RPCStatusCode, message: str) -> Callable[..., Any]:
    """An operator call that the server refuses."""

    async def call(*_: Any, **__: Any) -> Any:
        raise RPCError(message, status, b"")

    return call


def expected_refusal(namespace: str, address: str, missing: list[str], why: str) -> str:
    def kind(name: str) -> str:
        return "KeywordList" if name == "FleetbatchKeys" else "Keyword"

    create = (
        f"temporal operator search-attribute create --address {address} --namespace {namespace}"
    )
    lines = [
        f"Temporal namespace {namespace!r} at {address} lacks fleetbatch's search attributes "
        + ", ".join(f"{n} ({kind(n)})" for n in missing)
        + f", and may not have them registered by this worker ({why}). Register them, then "
        "start the worker again:",
        *(f"  {create} --name {n} --type {kind(n)}" for n in missing),
    ]
    lines.append("or, on Temporal Cloud:")
    lines.append(
        f"  tcld namespace search-attributes add --namespace {namespace}"
        + "".join(f" --search-attribute {n}={kind(n)}" for n in missing)
    )
    return "\n".join(lines)


async def temporal_cli(*args: str) -> None:
    """Run the Temporal CLI (the dev server's binary) with ``args``; it must succeed."""
    process = await asyncio.create_subprocess_exec(
        str(find_binary("temporal")),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, (out + err).decode()


def temporal_cli_commands(message: str) -> list[list[str]]:
    """The message's Temporal CLI commands, as argument lists."""
    return [
        shlex.split(line.strip())
        for line in message.splitlines()
        if line.strip().startswith("temporal operator search-attribute create ")
    ]


async def test_a_worker_registers_them_in_a_fresh_namespace_at_start(
    dev_server: DevServer, tmp_path: Path
) -> None:
    client = await fresh_namespace(dev_server)
    assert not set(EXPECTED) & set(await custom_attributes(client))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETBATCH_")}
    env.update(
        FLEETBATCH_ENV_FILE=str(tmp_path / "absent.env"),
        FLEETBATCH_DATA_DIR=str(tmp_path / "data"),
        FLEETBATCH_TEMPORAL_ADDRESS=dev_server.address,
        FLEETBATCH_TEMPORAL_NAMESPACE=client.namespace,
        FLEETBATCH_TEMPORAL_TASK_QUEUE=f"sa-{uuid.uuid4().hex}",
        FLEETBATCH_METRICS_ADDRESS="",
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "fleetbatch.cli.main", "worker"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        async with asyncio.timeout(60):
            while "worker polling" not in log.read_text():
                assert worker.poll() is None, log.read_text()
                await asyncio.sleep(0.1)
        registered = await custom_attributes(client)
    finally:
        worker.terminate()
        code = worker.wait(60)
    assert {name: registered.get(name) for name in EXPECTED} == EXPECTED
    text = log.read_text()
    assert f"registered search attributes in Temporal namespace {client.namespace!r}" in text
    assert code == 0, text
    # Usable at once, and a second start finds them all.
    assert (await client.count_workflows("FleetbatchKeys = '1FBTCMD74RA000000'")).count == 0
    assert await ensure_search_attributes(client) == []


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (RPCStatusCode.PERMISSION_DENIED, "Request unauthorized."),
        (RPCStatusCode.UNIMPLEMENTED, "unknown method AddSearchAttributes"),
    ],
    ids=["permission-denied", "unimplemented"],
)
async def test_a_refused_registration_names_every_missing_attribute_and_the_commands(
    dev_server: DevServer,
    monkeypatch: pytest.MonkeyPatch,
    status: RPCStatusCode,
    message: str,
) -> None:
    client = await fresh_namespace(dev_server)
    operator = client.operator_service
    with monkeypatch.context() as patched:
        patched.setattr(operator, "add_search_attributes", refusing(status, message))
        with pytest.raises(ConfigError) as refused:
            await ensure_search_attributes(client)

    missing = ["FleetbatchBatchId", "FleetbatchPipeline", "FleetbatchKeys", "FleetbatchCommand"]
    assert str(refused.value) == expected_refusal(
        client.namespace, dev_server.address, missing, f"{status.name}: {message}"
    )
    assert not set(EXPECTED) & set(await custom_attributes(client))  # nothing registered

    # The commands it gives are the ones to run: with them, the next start goes on.
    commands = temporal_cli_commands(str(refused.value))
    assert len(commands) == len(missing)
    for command in commands:
        assert command[0] == "temporal"
        await temporal_cli(*command[1:])
    assert {n: t for n, t in (await custom_attributes(client)).items() if n in EXPECTED} == EXPECTED
    assert await ensure_search_attributes(client) == []


async def test_a_worker_that_may_not_list_them_asks_visibility_which_are_missing(
    dev_server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A namespace-scoped credential may be refused the operator API altogether: a
    visibility query tells which attributes exist, and only the others are named."""
    client = await fresh_namespace(dev_server)
    await temporal_cli(
        "operator",
        "search-attribute",
        "create",
        "--address",
        dev_server.address,
        "--namespace",
        client.namespace,
        "--name",
        "FleetbatchKeys",
        "--type",
        "KeywordList",
    )
    denied = refusing(RPCStatusCode.PERMISSION_DENIED, "Request unauthorized.")
    operator = client.operator_service
    monkeypatch.setattr(operator, "list_search_attributes", denied)
    monkeypatch.setattr(operator, "add_search_attributes", denied)

    with pytest.raises(ConfigError) as refused:
        await ensure_search_attributes(client)

    assert str(refused.value) == expected_refusal(
        client.namespace,
        dev_server.address,
        ["FleetbatchBatchId", "FleetbatchPipeline", "FleetbatchCommand"],
        "PERMISSION_DENIED: Request unauthorized.",
    )
