"""Recorded histories must keep replaying against today's workflow code.

A failure here means a workflow change would break running executions: put the
change behind ``workflow.patched`` instead. Record new histories with
``scripts/record_histories.py`` after a deliberate, versioned change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from fleetbatch.temporal.converter import DATA_CONVERTER
from fleetbatch.workflows import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_recorded() -> None:
    names = {p.name.split("-")[0] for p in HISTORIES}
    assert names == {"batch", "batcher", "chunk"}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # Histories recorded with the SDK's converter decode through fleetbatch's own.
    await Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER).replay_workflow(history)
