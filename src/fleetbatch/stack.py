"""Assembling the running parts: Temporal (embedded or remote), store, bus,
simulators, responder and worker, started and stopped in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from fleetbatch import gauges
from fleetbatch.bus import Bus, MemoryBus
from fleetbatch.bus.nats import NatsBus, NatsOptions
from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError
from fleetbatch.pipelines.enrich.client import EnrichmentCache, EnrichmentClient, RetryPolicy
from fleetbatch.pipelines.enrich.service import EnrichmentSimulator, EnrichmentSimulatorConfig
from fleetbatch.pipelines.vehicle.consent import ConsentService
from fleetbatch.pipelines.vehicle.consent_bus import BusConsentService
from fleetbatch.pipelines.vehicle.responder import Responder
from fleetbatch.pipelines.vehicle.simulators import (
    ConsentSimulator,
    DomainSimulator,
    DomainSimulatorConfig,
)
from fleetbatch.startup import wait_for
from fleetbatch.store import Store
from fleetbatch.telemetry import metrics_runtime
from fleetbatch.temporal import DevServer, build_workers, connect, ensure_search_attributes
from fleetbatch.temporal.devserver import port_open
from fleetbatch.temporal.rates import apply_configured_rates

log = logging.getLogger(__name__)

OnWaiting = Callable[[str | None], object]
"""Told ``"PostgreSQL at host:port"`` while a dependency is awaited, ``None`` once it is up."""


@dataclass
class Stack:
    """What a running stack exposes to its caller."""

    settings: Settings
    client: Client
    store: Store
    bus: Bus | None = None
    domain: DomainSimulator | None = None
    responder: Responder | None = None
    workers: list[Worker] | None = None
    ui_url: str | None = None


def dev_server_for(settings: Settings) -> DevServer:
    """The embedded dev server as the settings describe it; with payload encryption
    on, its Web UI decodes through the API's codec server."""
    data = settings.data_dir
    return DevServer(
        port=settings.dev_server_port,
        ui_port=settings.dev_server_ui_port,
        db_file=data / "temporal.db" if settings.dev_server_persist else None,
        log_file=data / "temporal.log",
        ui_codec_endpoint=settings.ui_codec_endpoint if settings.codec_key_ring else None,
    )


@contextlib.asynccontextmanager
async def temporal_client(
    settings: Settings,
    *,
    start_embedded: bool,
    runtime: Runtime | None = None,
    check_search_attributes: bool = False,
    wait: bool = False,
    on_waiting: OnWaiting | None = None,
) -> AsyncIterator[Client]:
    """A connected client; starts the embedded dev server when asked and none runs.

    With ``check_search_attributes`` (workers), fleetbatch's search attributes are
    registered where missing, on a cluster as on the dev server; a server that refuses
    raises ConfigError with the commands to run.

    With ``wait`` (long-running processes) an unreachable Temporal is tried again
    with backoff, one log line per attempt; without (short commands) it raises
    ``TemporalUnavailableError`` at once.
    """
    server: DevServer | None = None
    if settings.embedded_temporal and start_embedded and not port_open(settings.dev_server_port):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        server = dev_server_for(settings)
        await server.start()
    try:
        if wait:
            client = await wait_for(
                "Temporal",
                settings.effective_temporal_address,
                lambda: connect(settings, runtime=runtime),
                on_waiting=on_waiting,
            )
        else:
            client = await connect(settings, runtime=runtime)
        if server is not None or check_search_attributes:
            await ensure_search_attributes(client)
        yield client
    finally:
        if server is not None:
            server.stop()


def database_target(url: str) -> tuple[str, str]:
    """The database's kind and where it is, without credentials, for log lines:
    ``("PostgreSQL", "db.example:5432")``, ``("SQLite", "/data/fleetbatch.db")``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "the database", "its configured URL"
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return "SQLite", parsed.database or ":memory:"
    name = {"postgresql": "PostgreSQL", "postgres": "PostgreSQL"}.get(backend, backend)
    port = parsed.port or (5432 if name == "PostgreSQL" else None)
    host = parsed.host or "localhost"
    return name, host if port is None else f"{host}:{port}"


def bus_target(url: str) -> str:
    """A NATS URL without credentials."""
    return re.sub(r"//[^/@]*@", "//", url)


@contextlib.asynccontextmanager
async def open_store(
    settings: Settings, *, wait: bool = False, on_waiting: OnWaiting | None = None
) -> AsyncIterator[Store]:
    """The store, migrated to the newest schema.

    With ``wait`` (long-running processes) a database that does not answer yet is
    tried again with backoff, one log line per attempt; without (short commands)
    the driver's error is raised at once. A wrong database name or password is
    raised at once either way.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    if wait:
        name, target = database_target(url)
        store = await wait_for(
            name,
            target,
            lambda: Store.open(url, settings.breaker_policy),
            on_waiting=on_waiting,
        )
    else:
        store = await Store.open(url, settings.breaker_policy)
    try:
        yield store
    finally:
        await store.close()


def _metrics_runtime(address: str | None) -> Runtime | None:
    """The metrics runtime; a busy address costs the metrics, not the worker."""
    if not address:
        return None
    try:
        return metrics_runtime(address)
    except ValueError as exc:
        log.warning(
            "no metrics endpoint (%s); set FLEETBATCH_METRICS_ADDRESS to a free host:port", exc
        )
        return None


def nats_options(settings: Settings) -> NatsOptions:
    """How the settings want JetStream used."""
    return NatsOptions(
        namespace=settings.bus_namespace,
        max_deliver=settings.bus_max_deliver,
        ack_wait_seconds=settings.bus_ack_wait_seconds,
        backoff_seconds=tuple(settings.bus_backoff_seconds),
    )


@contextlib.asynccontextmanager
async def open_bus(
    settings: Settings, store: Store, *, wait: bool = False, on_waiting: OnWaiting | None = None
) -> AsyncIterator[Bus]:
    """The configured bus; NATS dead-letters into the store's dead-letter table.

    With ``wait`` an unreachable NATS is tried again with backoff; without, it
    raises ``BusUnavailableError`` at once.
    """
    bus: Bus
    if settings.nats:
        options = nats_options(settings)

        async def attempt() -> NatsBus:
            return await NatsBus.connect(settings.bus, options, store.dead_letters.add)

        if wait:
            bus = await wait_for("NATS", bus_target(settings.bus), attempt, on_waiting=on_waiting)
        else:
            bus = await attempt()
    else:
        bus = MemoryBus()
    try:
        yield bus
    finally:
        await bus.close()


@contextlib.asynccontextmanager
async def domain_simulator(settings: Settings, bus: Bus) -> AsyncIterator[DomainSimulator]:
    """The domain simulator as the settings describe it, started."""
    log = None if settings.sim_log_file is None else settings.sim_log_file.open("a", buffering=1)
    domain = DomainSimulator(
        bus,
        DomainSimulatorConfig(
            latency_ms=settings.sim_latency_ms,
            latency_jitter_ms=settings.sim_latency_jitter_ms,
            failure_rate=settings.sim_failure_rate,
            timeout_rate=settings.sim_timeout_rate,
            seed=settings.sim_seed,
        ),
        log=log,
        journal=settings.sim_journal,
    )
    await domain.start()
    try:
        yield domain
    finally:
        await domain.stop()
        if log is not None:
            log.close()


def consent_simulator(settings: Settings) -> ConsentSimulator:
    """The consent simulator as the settings describe it."""
    return ConsentSimulator(settings.sim_no_consent_rate, seed=settings.sim_seed or 0)


@contextlib.asynccontextmanager
async def enrichment_service(settings: Settings) -> AsyncIterator[str]:
    """The enrichment service's URL: the configured one, or the simulator's, started
    on a free local port for as long as the context lasts."""
    if settings.enrich_url:
        yield settings.enrich_url
        return
    async with EnrichmentSimulator(enrichment_simulator_config(settings)) as simulator:
        yield simulator.url


def enrichment_client(settings: Settings, url: str) -> EnrichmentClient:
    """The enrichment service's client with the seed's retries and a TTL cache."""
    return EnrichmentClient(
        url,
        timeout_seconds=settings.enrich_timeout_seconds,
        policy=RetryPolicy(initial_seconds=settings.enrich_retry_initial_seconds),
        cache=EnrichmentCache(settings.enrich_cache_ttl_seconds),
    )


def enrichment_simulator_config(settings: Settings) -> EnrichmentSimulatorConfig:
    """The enrichment simulator as the settings describe it."""
    return EnrichmentSimulatorConfig(
        latency_ms=settings.enrich_sim_latency_ms,
        latency_jitter_ms=settings.enrich_sim_latency_ms / 2,
        failure_rate=settings.enrich_sim_failure_rate,
        rate_limit_rate=settings.enrich_sim_rate_limit_rate,
        timeout_rate=settings.enrich_sim_timeout_rate,
        timeout_seconds=settings.enrich_timeout_seconds * 2,
        seed=settings.sim_seed,
    )


@contextlib.asynccontextmanager
async def serve(
    settings: Settings,
    client: Client,
    store: Store,
    resources: dict[str, Any],
) -> AsyncIterator[list[Worker]]:
    """Every worker of this process, running; the command types' rates set first."""
    if settings.apply_rates:
        await apply_configured_rates(client, settings.temporal_task_queue, settings.command_types)
    workers = build_workers(client, settings, store, resources, batcher=settings.batcher_config)
    async with contextlib.AsyncExitStack() as running:
        for worker in workers:
            await running.enter_async_context(worker)
        sampler = asyncio.create_task(sample_store_gauges(store))
        try:
            yield workers
        finally:
            sampler.cancel()


DEAD_LETTER_SAMPLE_SECONDS = 15.0
"""How often a worker reads the store's dead-letter count into its gauge."""


async def sample_store_gauges(store: Store, every: float = DEAD_LETTER_SAMPLE_SECONDS) -> None:
    """Set the gauges that report what the store holds, until cancelled. Dead letters
    are added by whichever process consumes the bus (responder, simulators), not
    only workers: the store is where every worker reads the same count."""
    while True:
        try:
            gauges.dead_letters(await store.dead_letters.count())
        except Exception:  # a database blip: the next sample tries again
            log.warning("could not count dead letters", exc_info=True)
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def run_stack(
    settings: Settings,
    *,
    start_embedded: bool = True,
    services: bool = True,
    wait: bool = True,
    on_waiting: OnWaiting | None = None,
) -> AsyncIterator[Stack]:
    """A worker with its Temporal client (and the embedded dev server when asked),
    store and bus, until the context exits.

    With ``services`` the simulators and the responder run in this process too:
    the whole stack in one process. Without, they are processes of their own
    (``fleetbatch responder``, ``fleetbatch simulate …``) and consent is asked
    over the bus, which must then be NATS.

    A long-running process starts in any order with its dependencies: with
    ``wait`` (the default) Temporal, the database and NATS are each waited for in
    turn, with backoff and one log line per failed attempt; ``on_waiting`` hears
    what is awaited (``None`` once it is up).
    """
    runtime = _metrics_runtime(settings.metrics_address)
    async with (
        temporal_client(
            settings,
            start_embedded=start_embedded,
            runtime=runtime,
            wait=wait,
            on_waiting=on_waiting,
            check_search_attributes=True,
        ) as client,
        open_store(settings, wait=wait, on_waiting=on_waiting) as store,
        open_bus(settings, store, wait=wait, on_waiting=on_waiting) as bus,
        contextlib.AsyncExitStack() as running,
    ):
        domain: DomainSimulator | None = None
        responder: Responder | None = None
        consent: ConsentService
        if services:
            domain = await running.enter_async_context(domain_simulator(settings, bus))
            consent = consent_simulator(settings)
            responder = Responder(bus, client, store.orphans)
            await responder.start()
            running.push_async_callback(responder.stop)
        elif isinstance(bus, NatsBus):
            consent = BusConsentService(bus)
        else:
            raise ConfigError(
                "a worker without in-process simulators needs FLEETBATCH_BUS=nats://…"
            )
        ui_url = settings.temporal_web_url
        resources: dict[str, Any] = {"bus": bus, "consent": consent}
        url = settings.enrich_url
        if services and url is None:
            url = await running.enter_async_context(enrichment_service(settings))
        if url is not None:
            resources["enrich_client"] = await running.enter_async_context(
                enrichment_client(settings, url)
            )
        async with serve(settings, client, store, resources) as workers:
            yield Stack(settings, client, store, bus, domain, responder, workers, ui_url)
