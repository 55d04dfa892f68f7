"""The ``fleetbatch`` script leaves with ``os._exit`` after its command (the Temporal
bridge's threads can crash CPython's finalization): exit codes and every byte of
output must still come through."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = [sys.executable, "-c", "from fleetbatch.cli.main import main; main()"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SCRIPT, *args], capture_output=True, text=True, timeout=60, check=False)


def test_output_is_flushed_and_success_exits_0() -> None:
    done = run("--help")
    assert done.returncode == 0, done.stderr
    # The whole help, to its last command and box line.
    assert "submit" in done.stdout and "dlq" in done.stdout
    assert done.stdout.rstrip().endswith("╯")


def test_a_command_error_exits_1_with_its_message() -> None:
    done = run("submit", "/nonexistent/vins.csv", "--command", "lock_doors")
    assert done.returncode == 1
    assert "error:" in done.stderr and "/nonexistent/vins.csv" in done.stderr


def test_a_usage_error_exits_2() -> None:
    done = run("no-such-command")
    assert done.returncode == 2
    assert "No such command" in done.stderr


def test_schedule_and_policy_options_are_checked_before_anything_runs(tmp_path: Path) -> None:
    file = tmp_path / "vins.csv"
    file.write_text("vin\n1HGCM82633A004352\n")
    unknown = run("submit", str(file), "-c", "ota_update", "--policy", "cautious_ota")
    assert unknown.returncode == 1
    assert "unknown rollout policy 'cautious_ota'; did you mean 'cautious-ota'?" in unknown.stderr
    window = run("submit", str(file), "-c", "lock_doors", "--window", "01:00-05:00 Europe/Bxl")
    assert window.returncode == 1
    assert "unknown time zone 'Europe/Bxl'" in window.stderr
    times = run(
        "submit", str(file), "--start-at", "2026-12-24T02:00", "--end-at", "2026-12-24T01:00Z"
    )
    assert times.returncode == 1
    assert "the end time must come after the start time" in times.stderr
