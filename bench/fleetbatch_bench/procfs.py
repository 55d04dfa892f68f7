"""Peak memory and CPU time of a process, from Linux's /proc.

Peak RSS is the kernel's ``VmHWM``. Writing ``5`` to ``/proc/self/clear_refs``
resets it to the current RSS, so each configuration's peak is its own (memory
the interpreter kept from an earlier one still counts, as it would in a
long-running worker). Elsewhere than Linux the figures are None.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def reset_peak_rss() -> None:
    """Reset this process's peak RSS to its current RSS (a no-op where unsupported)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _status_bytes(pid: int | str, key: str) -> int | None:
    """A size in ``/proc/PID/status`` (given there in KiB), in bytes."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes(pid: int | str = "self") -> int | None:
    """The process's peak resident set size (``VmHWM``)."""
    return _status_bytes(pid, "VmHWM")


def rss_bytes(pid: int | str = "self") -> int | None:
    """The process's resident set size now (``VmRSS``)."""
    return _status_bytes(pid, "VmRSS")


def cpu_seconds(pid: int | str = "self") -> float | None:
    """User plus system CPU time the process (all its threads) has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_busy_seconds() -> float | None:
    """CPU time every core of the machine has spent busy so far (idle and I/O wait excluded).

    Compared with the run's own processes, it shows how much of the machine
    something else took while the benchmark ran: a noisy neighbour.
    """
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (ticks + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds so far of this process (the worker), the dev server and the whole machine."""

    worker: float | None
    server: float | None
    machine: float | None

    @classmethod
    def take(cls, server_pid: int) -> CpuSample:
        return cls(cpu_seconds(), cpu_seconds(server_pid), machine_busy_seconds())

    def minus(self, before: CpuSample) -> CpuSample:
        return CpuSample(
            _delta(self.worker, before.worker),
            _delta(self.server, before.server),
            _delta(self.machine, before.machine),
        )

    @property
    def others(self) -> float | None:
        """What the rest of the machine used (never below zero: clocks tick coarsely)."""
        if self.machine is None or self.worker is None or self.server is None:
            return None
        return max(0.0, self.machine - self.worker - self.server)
