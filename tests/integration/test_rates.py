"""Command rates on the dev server's task queue configuration."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError
from fleetbatch.temporal.rates import OPERATOR, apply_configured_rates, current_rate, set_rate


async def test_configured_rates_are_set_and_an_operators_rate_is_kept(dev_client: Client) -> None:
    queue = f"tq-{uuid.uuid4()}"
    types = Settings(
        commands={"lock_doors": {"rate": "20/s", "publish_slice": 4}, "honk_horn": {"rate": "off"}}
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
