"""``submit --ramp`` and ``--overshoot``: refused before anything is stored or started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = [sys.executable, "-c", "from fleetbatch.cli.main import main; main()"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--ramp", "base=60/min,factor=0.5"],
            "error: invalid ramp 'base=60/min,factor=0.5': the base must be above zero, "
            "the factor at least 1 and a step at least 1 item",
        ),
        (
            ["--overshoot", "10"],
            "error: an overshoot bound needs a rule to abort on: give --max-failures or a gate",
        ),
    ],
)
def test_submit_refuses_a_bad_ramp_or_a_bound_without_a_rule(
    tmp_path: Path, options: list[str], message: str
) -> None:
    vins = tmp_path / "vins.csv"
    vins.write_text("vin\n1FTEW1EP5JFA00001\n")
    env = {**os.environ, "FLEETBATCH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [*SCRIPT, "submit", str(vins), "-c", "lock_doors", *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == message
