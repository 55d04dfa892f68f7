"""Command rates on the dev server's task queue configuration."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from fleetbatch.bus import CommandMessage
from fleetbatch.config import CommandSettings, Settings
from fleetbatch.errors import ConfigError
from fleetbatch.pipelines.vehicle.simulators import Decision
from fleetbatch.temporal.rates import OPERATOR, apply_configured_rates, current_rate, set_rate
from support import fitted_rate, harness, vins

# Rates measured in real time: `make test` runs these alone, after the parallel run.
pytestmark = pytest.mark.timing

RATE = 5.0
"""Below what one workflow per item reaches on this machine (~14 VINs/s)."""


async def test_configured_rates_are_set_and_an_operators_rate_is_kept(dev_client: Client) -> None:
    queue = f"tq-{uuid.uuid4()}"
    types = Settings(
        commands={"lock_doors": {"rate": "20/s"}, "honk_horn": {"rate": "off"}}
    ).command_types
    lock, honk = types["lock_doors"], types["honk_horn"]

    await apply_configured_rates(dev_client, queue, types)
    first = await current_rate(dev_client, queue, lock)
    assert (first.items_per_second, first.reason) == (20.0, "configured")
    assert first.task_queue == f"{queue}-publish-lock_doors"
    assert (await current_rate(dev_client, queue, honk)).items_per_second is None
    with pytest.raises(ConfigError, match="honk_horn is configured without a rate"):
        await set_rate(dev_client, queue, honk, 5.0, f"{OPERATOR}: test")

    await set_rate(dev_client, queue, lock, 5.0, f"{OPERATOR}: test")
    # A worker starting later keeps what the operator set.
    await apply_configured_rates(dev_client, queue, types)
    kept = await current_rate(dev_client, queue, lock)
    assert (kept.items_per_second, kept.set_by_operator) == (5.0, True)

    await set_rate(dev_client, queue, lock, lock.rate_per_second, "configured")
    back = await current_rate(dev_client, queue, lock)
    assert (back.items_per_second, back.set_by_operator) == (20.0, False)


async def test_the_rate_is_in_items_per_second_for_every_chunk_size(
    dev_client: Client, tmp_path: Path
) -> None:
    """The server's limit counts publish activities; each carries one item, so a
    per-VIN batch, a chunk of 10 and a chunk of 100 all run at the configured item
    rate. Three command types, one per chunk size, run at once, each on its queue."""
    chunk_of = {"lock_doors": 1, "unlock_doors": 10, "honk_horn": 100}
    first_seen: dict[str, dict[str, float]] = {command: {} for command in chunk_of}

    def decide(message: CommandMessage) -> Decision:
        first_seen[message.command].setdefault(message.command_id, time.monotonic())
        return Decision.SUCCEED

    items = 200
    async with harness(
        dev_client,
        tmp_path,
        decide=decide,
        max_in_flight=200,
        apply_rates=True,
        commands={command: CommandSettings(rate=f"{RATE}/s") for command in chunk_of},
    ) as h:
        uploads = [
            await h.submit(vins(items, start=1000 * n), command=command, chunk_size=size)
            for n, (command, size) in enumerate(chunk_of.items())
        ]
        for upload in uploads:
            assert (await h.result(upload.batch_id))["succeeded"] == items
    for command, size in chunk_of.items():
        times = sorted(first_seen[command].values())
        assert len(times) == items
        # The limiter lets a first burst through, and the queue's partitions drain
        # unevenly at the end (each holds a share of the rate): the rate is what
        # holds between the two, fitted over every delivery there (least squares,
        # ~20 s of deliveries), so neither end nor one late delivery sets it.
        first, last = items // 4, items * 3 // 4
        measured = fitted_rate(times[first:last])
        assert measured == pytest.approx(RATE, rel=0.05), f"chunk size {size}: {measured:.2f}/s"


async def test_the_response_timeout_counts_from_the_publish_not_the_queue(
    dev_client: Client, tmp_path: Path
) -> None:
    """A chunk of 20 on a queue of 5 items/s takes ~4 s to publish; each answer comes
    1 s after its command, and the response timeout is 3 s. Counted from the attempt's
    start, the commands queued past its second second would time out and go out again;
    counted from the publish, each is answered at its first attempt."""
    items = 20
    async with harness(
        dev_client,
        tmp_path,
        latency_ms=1000,
        apply_rates=True,
        commands={"lock_doors": CommandSettings(rate=f"{RATE}/s", response_timeout_seconds=3.0)},
    ) as h:
        upload = await h.submit(vins(items, start=5000), chunk_size=items)
        assert (await h.result(upload.batch_id))["succeeded"] == items
        stored = await h.items(upload.batch_id)
    assert {row["attempts"] for row in stored.values()} == {1}
