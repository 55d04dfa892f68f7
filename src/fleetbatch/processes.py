"""The production shape's processes besides the worker: each runs until its stop
event is set (SIGTERM or Ctrl+C from the CLI), then finishes what it holds.

``responder``: bus responses → grouped workflow signals. ``domain``: the domain
simulator over the bus. ``consent``: the consent simulator answering consent
questions over the bus.

Each waits for its dependencies (Temporal, the database, NATS) with backoff, one
log line per attempt, so the processes may start in any order.
"""

from __future__ import annotations

import asyncio
import logging

from fleetbatch.bus.nats import NatsBus
from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError
from fleetbatch.pipelines.vehicle.consent_bus import serve_consent
from fleetbatch.pipelines.vehicle.responder import Responder
from fleetbatch.stack import (
    consent_simulator,
    domain_simulator,
    open_bus,
    open_store,
    temporal_client,
)

log = logging.getLogger(__name__)


async def run_responder(settings: Settings, stop: asyncio.Event) -> None:
    """Signal chunk workflows with the responses on the bus until ``stop``."""
    async with (
        temporal_client(settings, start_embedded=False, wait=True) as client,
        open_store(settings, wait=True) as store,
        open_bus(settings, store, wait=True) as bus,
    ):
        responder = Responder(bus, client, store.orphans)
        await responder.start()
        log.info("responder running", extra={"bus": settings.bus})
        try:
            await stop.wait()
        finally:
            await responder.stop()
        log.info(
            "responder stopped: %d signals, %d orphans",
            responder.signals_sent,
            responder.orphans_recorded,
        )


async def run_domain_simulator(settings: Settings, stop: asyncio.Event) -> None:
    """Execute the commands on the bus (the domain simulator) until ``stop``."""
    async with (
        open_store(settings, wait=True) as store,
        open_bus(settings, store, wait=True) as bus,
    ):
        async with domain_simulator(settings, bus) as domain:
            log.info("domain simulator running", extra={"journal": str(settings.sim_journal)})
            await stop.wait()
        log.info("domain simulator stopped: %d executed", sum(domain.executed.values()))


async def run_consent_simulator(settings: Settings, stop: asyncio.Event) -> None:
    """Answer consent questions on the bus (the consent simulator) until ``stop``."""
    async with (
        open_store(settings, wait=True) as store,
        open_bus(settings, store, wait=True) as bus,
    ):
        if not isinstance(bus, NatsBus):
            raise ConfigError("`simulate consent` answers over NATS: set FLEETBATCH_BUS=nats://…")
        sub = await serve_consent(bus, consent_simulator(settings))
        log.info("consent simulator running")
        try:
            await stop.wait()
        finally:
            await sub.unsubscribe()
