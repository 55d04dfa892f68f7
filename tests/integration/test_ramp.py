"""A batch's own ramping rate, measured at the domain simulator on the dev server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from fleetbatch.config import CommandSettings
from fleetbatch.domain.ramp import parse_ramp, ramp_rate
from fleetbatch.domain.rollout import Rollout
from support import Harness, fitted_rate, harness, vins

# Rates measured in real time: `make test` runs these alone, after the parallel run.
pytestmark = pytest.mark.timing

RAMP = "base=300/min,factor=2,after=50,max=1200/min"
"""5/s for 50 items, 10/s for 50, then 20/s: about 20 s for 200 items."""
STEADY = {5.0: (8, 42), 10.0: (60, 92), 20.0: (115, 185)}
"""Each step's steady part, by delivery order: the step's items less its edges (a
step begins with the chunk that starts past 50 or 100 notified items)."""
DELIVERIES = "deliveries.csv"


def first_deliveries(log: Path, batch_id: str) -> list[float]:
    """When each command of the batch was first delivered, in order (the simulator's
    delivery log: ``unix time,batch id,command id``)."""
    seen: dict[str, float] = {}
    for line in log.read_text().splitlines():
        at, batch, command_id = line.split(",")
        if batch == batch_id:
            seen.setdefault(command_id, float(at))
    return sorted(seen.values())


@contextlib.asynccontextmanager
async def logging_harness(
    client: Client, tmp_path: Path, rate: str, **settings: Any
) -> AsyncIterator[Harness]:
    """The harness with 50 items in flight and the command type's server-side
    ``rate``; the domain simulator writes its delivery log in ``tmp_path``."""
    with (tmp_path / DELIVERIES).open("w", buffering=1) as deliveries:
        async with harness(
            client,
            tmp_path,
            domain_log=deliveries,
            max_in_flight=50,
            commands={"lock_doors": CommandSettings(rate=rate)},
            **settings,
        ) as h:
            yield h


def assert_steps(
    tmp_path: Path, batch_id: str, items: int, steps: dict[float, tuple[int, int]]
) -> None:
    """Every item of the batch delivered, and over each step's steady part (by
    delivery order, ``steps``: rate → (first, last)) the rate fitted within 5 %."""
    times = first_deliveries(tmp_path / DELIVERIES, batch_id)
    assert len(times) == items
    for rate, (first, last) in steps.items():
        measured = fitted_rate(times[first:last])
        assert measured == pytest.approx(rate, rel=0.05), f"{rate}/s step: {measured:.2f}/s"


async def test_the_measured_rate_follows_the_ramp(dev_client: Client, tmp_path: Path) -> None:
    ramp = parse_ramp(RAMP)
    assert [ramp_rate(ramp, n) for n in (0, 50, 100, 150)] == [5.0, 10.0, 20.0, 20.0]
    # No server-side rate for the type here: the batch's own ramp is the limit.
    async with logging_harness(dev_client, tmp_path, rate="off") as h:
        upload = await h.submit(vins(200, start=50_000), rollout=Rollout(ramp=ramp))
        running = await h.until_progress(upload.batch_id, lambda p: p.in_flight_items)
        assert running.rate_per_minute == 300.0
        assert (await h.result(upload.batch_id))["succeeded"] == 200
    assert_steps(tmp_path, upload.batch_id, 200, STEADY)


async def test_a_ramp_paces_publishes_on_the_command_types_rate_limited_queue(
    dev_client: Client, tmp_path: Path
) -> None:
    """A type with a server-side rate publishes each item in an activity on its queue:
    each waits for its slot in the batch's schedule, under the type's 50/s."""
    async with logging_harness(dev_client, tmp_path, rate="50/s", apply_rates=True) as h:
        ramp = parse_ramp("base=300/min,factor=2,after=40,max=600/min")
        upload = await h.submit(vins(100, start=60_000), rollout=Rollout(ramp=ramp))
        assert (await h.result(upload.batch_id))["succeeded"] == 100
    assert_steps(tmp_path, upload.batch_id, 100, {5.0: (6, 34), 10.0: (50, 92)})
