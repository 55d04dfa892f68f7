"""The NATS JetStream adapter on a real server: redelivery, dead letters and their
replay through the CLI, orphan responses, consent over the bus."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from external import NATS_URL, nats_namespace
from fleetbatch.bus import RESPONSES_SUBJECT, ResponseMessage, commands_subject, domain_subject
from fleetbatch.bus.nats import NatsBus, NatsOptions
from fleetbatch.errors import BusUnavailableError
from fleetbatch.pipelines.vehicle.consent_bus import BusConsentService, serve_consent
from fleetbatch.pipelines.vehicle.responder import Responder
from fleetbatch.pipelines.vehicle.simulators import ConsentSimulator
from fleetbatch.store import Store

pytestmark = pytest.mark.integration
__all__ = ["nats_namespace"]  # a fixture


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path / 'fleetbatch.db'}")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def bus(nats_namespace: str, store: Store) -> AsyncIterator[NatsBus]:
    options = NatsOptions(
        namespace=nats_namespace, max_deliver=3, ack_wait_seconds=2, backoff_seconds=(0.1, 0.2)
    )
    opened = await NatsBus.connect(NATS_URL, options, store.dead_letters.add)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def responder(bus: NatsBus, store: Store, dev_client: Client) -> AsyncIterator[Responder]:
    running = Responder(bus, dev_client, store.orphans)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def until(check: object, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():  # type: ignore[operator]
            await asyncio.sleep(0.1)


async def cli(tmp_path: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a ``fleetbatch`` command on this test's store and namespace (off the event loop,
    which keeps serving the bus meanwhile)."""
    env = {
        **os.environ,
        "FLEETBATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'fleetbatch.db'}",
        "FLEETBATCH_DATA_DIR": str(tmp_path),
        "FLEETBATCH_BUS": NATS_URL,
        "FLEETBATCH_BUS_NAMESPACE": namespace,
        "COLUMNS": "200",
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "fleetbatch.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_streams_are_created_idempotently_and_subjects_are_per_command_type(
    bus: NatsBus,
) -> None:
    await bus.ensure_streams()  # a second time: no error, same streams
    got: list[bytes] = []

    async def handler(data: bytes) -> None:
        got.append(data)

    sub = await bus.subscribe(domain_subject("vehicle"), handler)
    await bus.publish(commands_subject("vehicle", "lock_doors"), [b"1", b"2"])
    await bus.publish(commands_subject("vehicle", "honk"), [b"3"])
    await bus.publish(commands_subject("backoffice", "sync"), [b"other domain"])

    async def three() -> bool:
        return len(got) == 3

    await until(three)
    await sub.close()
    assert sorted(got) == [b"1", b"2", b"3"]


async def test_a_failing_handler_gets_the_message_again_then_it_is_dead_lettered(
    bus: NatsBus, store: Store, responder: Responder, tmp_path: Path, nats_namespace: str
) -> None:
    await bus.publish(RESPONSES_SUBJECT, [b"not json"])

    async def dead() -> bool:
        return len(await store.dead_letters.list()) == 1

    await until(dead)
    [letter] = await store.dead_letters.list()
    assert letter.subject == RESPONSES_SUBJECT
    assert letter.payload == b"not json"
    assert letter.deliveries == 3
    assert letter.error.startswith("JSONDecodeError")

    listed = await cli(tmp_path, nats_namespace, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{letter.id} " in listed.stdout
    assert "fleetbatch.responses" in listed.stdout
    assert "1 dead letters" in listed.stdout

    replayed = await cli(tmp_path, nats_namespace, "dlq", "replay", str(letter.id))
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {letter.id} to fleetbatch.responses" in replayed.stdout

    # Replayed, it is delivered again, still fails, and comes back as a new letter.
    async def again() -> bool:
        return len(await store.dead_letters.list(include_replayed=True)) == 2

    await until(again)
    first, second = await store.dead_letters.list(include_replayed=True)
    assert first.replayed_at is not None
    assert second.replayed_at is None and second.payload == b"not json"

    unknown = await cli(tmp_path, nats_namespace, "dlq", "replay", str(first.id), "999999")
    assert unknown.returncode == 1
    assert f"not found or already replayed: {first.id}, 999999" in unknown.stderr


async def test_a_response_for_a_finished_or_unknown_workflow_is_recorded_as_orphan(
    bus: NatsBus, store: Store, responder: Responder, tmp_path: Path, nats_namespace: str
) -> None:
    message = ResponseMessage(
        command_id="c-orphan-1",
        reply_to=f"chunk-gone-{nats_namespace}",
        ok=True,
        vin="WDB00000000000001",
        batch_id="b-orphan",
    )
    # Delivered twice (a redelivery): recorded once.
    await bus.publish(RESPONSES_SUBJECT, [message.encode(), message.encode()])

    async def recorded() -> bool:
        return responder.orphans_recorded == 2

    await until(recorded)
    [orphan] = await store.orphans.list("b-orphan")
    assert (orphan.effect_id, orphan.workflow_id, orphan.ok) == (
        "c-orphan-1",
        message.reply_to,
        True,
    )
    assert await store.dead_letters.list() == []
    shown = await cli(tmp_path, nats_namespace, "orphans", "--batch", "b-orphan")
    assert shown.returncode == 0, shown.stderr
    assert "c-orphan-1" in shown.stdout and "1 orphan responses" in shown.stdout


async def test_consent_is_asked_over_the_bus(bus: NatsBus) -> None:
    sub = await serve_consent(bus, ConsentSimulator(denied_vins=["WDB00000000000002"]))
    try:
        denied = await BusConsentService(bus).denied(["WDB00000000000001", "WDB00000000000002"])
    finally:
        await sub.unsubscribe()
    assert denied == {"WDB00000000000002"}


async def test_no_server_is_a_precise_error() -> None:
    url = "nats://127.0.0.1:1"  # tcpmux: nothing listens there
    with pytest.raises(BusUnavailableError, match=f"no NATS server answers at {url}: "):
        await NatsBus.connect(url, NatsOptions(connect_timeout_seconds=1))


async def test_a_message_whose_handler_never_finishes_comes_back_then_is_dead_lettered(
    nats_namespace: str, store: Store
) -> None:
    options = NatsOptions(namespace=nats_namespace, max_deliver=2, ack_wait_seconds=1)
    bus = await NatsBus.connect(NATS_URL, options, store.dead_letters.add)
    release = asyncio.Event()
    calls = 0

    async def stuck(_data: bytes) -> None:
        # Like a process that died holding the message: no ack, no nak.
        nonlocal calls
        calls += 1
        await release.wait()
        raise RuntimeError("released")

    try:
        sub = await bus.subscribe(domain_subject("vehicle"), stuck)
        await bus.publish(commands_subject("vehicle", "lock_doors"), [b"held"])

        async def dead() -> bool:
            return len(await store.dead_letters.list()) >= 1

        await until(dead)
        letter = (await store.dead_letters.list())[0]
        # Delivered at least max_deliver times, then dead-lettered. Exact counts are not
        # promised: under load the server may count a delivery lost in transit, or hand
        # the same delivery to two expiring pull requests (seen in CI).
        assert calls >= 1
        assert letter.deliveries >= options.max_deliver
        assert (letter.subject, letter.payload) == (
            "fleetbatch.commands.vehicle.lock_doors",
            b"held",
        )
        assert letter.error == "handler did not finish (process stopped)"
        release.set()
        await sub.close()
    finally:
        release.set()
        await bus.close()


async def test_a_consumer_is_brought_to_the_new_settings_on_subscribe(nats_namespace: str) -> None:
    async def ignore(_data: bytes) -> None:
        pass

    for ack_wait in (5.0, 12.0):
        bus = await NatsBus.connect(
            NATS_URL, NatsOptions(namespace=nats_namespace, ack_wait_seconds=ack_wait)
        )
        try:
            sub = await bus.subscribe(RESPONSES_SUBJECT, ignore)
            await sub.close()
            info = await bus._js.consumer_info(bus.responses_stream, f"{nats_namespace}_responses")
        finally:
            await bus.close()
        assert info.config.ack_wait == ack_wait
        assert info.config.max_deliver == -1  # the consumer, not the server, dead-letters
