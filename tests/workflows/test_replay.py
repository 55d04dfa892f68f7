"""Recorded histories must keep replaying against today's workflow code.

A failure here means a workflow change would break running executions: version
it (a pinned Worker Deployment version for the short-lived chunk workflows, or
``workflow.patched`` for the long-lived batch and batcher) instead. Record each
release's histories with ``scripts/record_histories.py RELEASE``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from fleetbatch.pipelines import all_pipelines
from fleetbatch.temporal.converter import DATA_CONVERTER
from fleetbatch.workflows import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
REPLAYED = [*WORKFLOWS, *(w for p in all_pipelines() for w in p.workflows())]


def test_every_workflow_of_the_release_has_histories() -> None:
    releases = {p.name.split("-")[1] for p in HISTORIES}
    assert "0.2.0" in releases
    kinds = {p.name.split("-")[0] for p in HISTORIES if p.name.split("-")[1] == "0.2.0"}
    assert kinds == {"batch", "batcher", "vehicle", "enrich", "notice"}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # Histories recorded with the SDK's converter decode through fleetbatch's own.
    await Replayer(workflows=REPLAYED, data_converter=DATA_CONVERTER).replay_workflow(history)
