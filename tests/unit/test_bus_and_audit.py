"""Subject matching, the in-process bus's wildcards, bus settings, and the audit's verdicts."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from fleetbatch.bus import MemoryBus, ResponseMessage, commands_subject, subject_matches
from fleetbatch.config import Settings
from fleetbatch.domain import ItemStatus, Outcome
from fleetbatch.errors import ConfigError
from fleetbatch.intake import read_rows
from fleetbatch.pipelines.vehicle.commands import get_command
from fleetbatch.pipelines.vehicle.responder import Responder
from fleetbatch.pipelines.vehicle.rows import validate_rows
from fleetbatch.pipelines.vehicle.simulators.domain import read_journal
from fleetbatch.services.audit import audit
from fleetbatch.store import NewBatch, OrphanRepository, Store
from support import csv_bytes, vins


@pytest.mark.parametrize(
    ("pattern", "subject", "match"),
    [
        ("fleetbatch.commands.vehicle.>", "fleetbatch.commands.vehicle.lock_doors", True),
        ("fleetbatch.commands.vehicle.>", "fleetbatch.commands.vehicle", False),
        ("fleetbatch.commands.*.honk", "fleetbatch.commands.vehicle.honk", True),
        ("fleetbatch.commands.*.honk", "fleetbatch.commands.vehicle.lock", False),
        ("fleetbatch.responses", "fleetbatch.responses", True),
        ("fleetbatch.responses", "fleetbatch.responses.x", False),
    ],
)
def test_subject_matching(pattern: str, subject: str, match: bool) -> None:
    assert subject_matches(pattern, subject) is match


async def test_memory_bus_delivers_by_wildcard() -> None:
    bus = MemoryBus()
    got: list[bytes] = []

    async def handler(data: bytes) -> None:
        got.append(data)

    sub = await bus.subscribe("fleetbatch.commands.vehicle.>", handler)
    await bus.publish(commands_subject("vehicle", "lock_doors"), [b"a", b"b"])
    await bus.publish(commands_subject("backoffice", "sync"), [b"c"])
    for _ in range(100):
        if len(got) == 2:
            break
        await asyncio.sleep(0.01)
    await sub.close()
    assert got == [b"a", b"b"]


async def test_memory_bus_handlers_that_wait_hold_up_no_other() -> None:
    """Handlers run at once up to their first wait: those that never wait finish in
    order, several may wait on one future, and waits of every kind resume them."""
    bus = MemoryBus()
    released = asyncio.get_running_loop().create_future()
    order: list[str] = []

    async def handler(data: bytes) -> None:
        kind = data.decode()
        if kind.startswith("shared"):
            await released  # one future for several handlers, as the responder's groups
        elif kind == "sleep":
            await asyncio.sleep(0.01)
            await asyncio.sleep(0)
        elif kind == "boom":
            raise ValueError("a handler failing loses only its own message")
        order.append(kind)

    sub = await bus.subscribe("s", handler)
    await bus.publish("s", [b"shared-1", b"now-1", b"shared-2", b"sleep", b"boom", b"now-2"])
    for _ in range(100):
        if "sleep" in order:
            break
        await asyncio.sleep(0.01)
    assert order == ["now-1", "now-2", "sleep"]
    released.set_result(None)
    for _ in range(100):
        if len(order) == 5:
            break
        await asyncio.sleep(0.01)
    assert sorted(order[3:]) == ["shared-1", "shared-2"]
    # A handler still waiting when its subscription closes is cancelled with it.
    stuck = asyncio.get_running_loop().create_future()

    async def waits_for_ever(_data: bytes) -> None:
        await stuck

    other = await bus.subscribe("t", waits_for_ever)
    await bus.publish("t", [b"x", b"y"])
    await asyncio.sleep(0.01)
    await asyncio.wait_for(other.close(), 1)
    assert stuck.cancelled()
    await sub.close()


def test_bus_settings_are_checked(tmp_path: Path) -> None:
    assert not Settings(data_dir=tmp_path).nats
    assert Settings(data_dir=tmp_path, bus="nats://127.0.0.1:4222").nats
    with pytest.raises(ConfigError, match="bus must be 'memory' or a nats:// URL, not 'kafka://x'"):
        Settings(data_dir=tmp_path, bus="kafka://x")
    with pytest.raises(ValidationError, match="bus_namespace"):
        Settings(data_dir=tmp_path, bus_namespace="has.dots")


def test_a_journal_line_cut_by_a_kill_is_not_an_execution(tmp_path: Path) -> None:
    journal = tmp_path / "journal.ndjson"
    whole = ResponseMessage("c-1", "chunk-1", True, vin="V", batch_id="b")
    journal.write_text(
        '{"command_id":"c-1","reply_to":"chunk-1","ok":true,"error":null,"vin":"V","batch_id":"b"}\n'
        '{"command_id":"c-2","rep'
    )
    assert list(read_journal(journal)) == [whole]
    assert list(read_journal(tmp_path / "missing")) == []


async def test_audit_finds_double_and_missing_executions(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        batch = "b-audit"
        rows = validate_rows(
            read_rows(io.BytesIO(csv_bytes(vins(3))), filename="f.csv", key_field="vin"),
            get_command("lock_doors"),
        )
        new = NewBatch("vehicle", "lock_doors", {"command": "lock_doors"}, 100, 1)
        await store.uploads.store(batch, new, "f.csv", rows, key_name="VIN")
        items = [r async for r in store.items.stream(batch)]
        ids = [r["effect_id"] for r in items]

        def ran(command_id: str, ok: bool = True) -> ResponseMessage:
            return ResponseMessage(command_id, "chunk", ok, batch_id=batch)

        report = await audit(store, [batch], [ran(ids[0]), ran(ids[0]), ran(ids[1])])
        assert not report.ok
        assert report.executed_twice == [ids[0]]
        # Nothing is recorded succeeded yet: every item is pending.
        assert report.executed_not_succeeded == sorted(ids[:2])
        assert report.not_terminal == [r["key"] for r in items]

        await store.items.record_outcomes(
            [Outcome(r["id"], ItemStatus.SUCCEEDED, 1) for r in items[1:]]
            + [Outcome(items[0]["id"], ItemStatus.FAILED, 1, "vehicle unreachable")]
        )
        report = await audit(store, [batch], [ran(ids[0], ok=False), ran(ids[1])])
        assert report.succeeded_not_executed == [ids[2]]
        assert report.executed_not_succeeded == [] and report.not_terminal == []
        agreed = await audit(store, [batch], [ran(ids[0], ok=False), ran(ids[1]), ran(ids[2])])
        assert agreed.ok and agreed.items == 3 and agreed.executions == 3
    finally:
        await store.close()


class _FlakySignals:
    """A test double of the Temporal client's workflow handles: the first signal
    fails as an unavailable server's would; each later one is kept."""

    def __init__(self) -> None:
        self.attempts = 0
        self.sent: list[list[str]] = []

    def get_workflow_handle(self, _workflow_id: str) -> _FlakySignals:
        return self

    async def signal(self, _signal: Any, responses: Any) -> None:
        self.attempts += 1
        if self.attempts == 1:
            raise RPCError("server unavailable", RPCStatusCode.UNAVAILABLE, b"")
        self.sent.append(list(responses.command_ids))


async def test_responder_handlers_return_once_a_retried_signal_was_accepted() -> None:
    client = _FlakySignals()
    responder = Responder(MemoryBus(), cast(Client, client), cast(OrphanRepository, None))
    first = [
        asyncio.ensure_future(responder._on_response(ResponseMessage(c, "w1", True).encode()))
        for c in ("c1", "c2")
    ]
    await asyncio.sleep(0)
    await responder._flush()  # the signal fails: the group waits for the next flush
    assert client.attempts == 1 and not any(f.done() for f in first)
    late = asyncio.ensure_future(responder._on_response(ResponseMessage("c3", "w1", True).encode()))
    await asyncio.sleep(0)
    await responder._flush()  # one signal, the retried responses with the new one
    await asyncio.wait_for(asyncio.gather(*first, late), 1)
    assert client.sent == [["c1", "c2", "c3"]]
