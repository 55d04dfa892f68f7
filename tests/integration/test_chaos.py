"""The chaos run's quick preset (issue 14): the production shape as processes on a
PostgreSQL, a NATS and a Temporal dev server of the run's own; a worker and the
responder SIGKILLed, NATS restarted, the Temporal server SIGKILLed and started
again on its state file; a cancel, a pause and resume and a redrive under load.
Every check must pass and every fault recover within 30 s.

The full run (15 faults, PostgreSQL stopped for 30 s, everything killed at once)
is `python -m fleetbatch_bench.chaos --faults 15 --seed 7`; see
docs/production.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from external import unavailable
from fleetbatch_bench.chaos_env import missing_binaries

# Minutes long: not in the default run; `make chaos` runs it, and CI after the suite.
pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@pytest.mark.timeout(420)
def test_the_quick_chaos_run_passes_every_check(tmp_path: Path) -> None:
    missing = missing_binaries("private")
    if missing:
        unavailable(f"the chaos run needs {' and '.join(missing)}")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "fleetbatch_bench.chaos", "--quick", "--json"),
            *("--workdir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.stdout, f"no report (exit {done.returncode}):\n{done.stderr[-4000:]}"
    report = json.loads(done.stdout)
    failed = [c for c in report["checks"] if not c["ok"]]
    assert not failed, json.dumps(failed, indent=2) + "\n" + done.stderr[-4000:]
    faults = [f for f in report["faults"] if not f["op"]]
    assert [f["label"] for f in faults] == [
        "SIGKILL worker-a",
        "SIGKILL responder",
        "NATS restarted",
        "SIGKILL Temporal server",
    ]
    for fault in faults:
        assert fault["recovery"]["before"] > 0, fault
        assert fault["recovery"]["seconds"] is not None, fault
        assert fault["recovery"]["seconds"] < 30, fault
    checks = {c["name"]: c["ok"] for c in report["checks"]}
    assert set(checks) >= {
        "every item terminal, every batch finished",
        "the audit agrees (exactly once)",
        "no dead letter unexplained",
        "no command published after its batch's cancel",
        "every recovery under 30 s",
        "no process exited on its own",
        "every process stops cleanly on SIGTERM",
    }
    # The operator did what the preset asks, through the CLI.
    assert sorted(op["action"] for op in report["ops"]) == ["cancel", "pause", "redrive", "resume"]
    assert len(report["cancels"]) == 1
    assert report["counts"]["cancelled"] > 0
    assert done.returncode == 0
    # A passing run leaves nothing behind.
    assert not list(tmp_path.iterdir())
