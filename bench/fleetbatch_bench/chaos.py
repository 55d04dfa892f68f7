"""The chaos run: the production shape as processes, broken on a seeded schedule,
then checked.

    python -m fleetbatch_bench.chaos --faults 15 --seed 7
    python -m fleetbatch_bench.chaos --quick            # 4 faults, about 4 minutes

What runs: PostgreSQL, NATS JetStream and a Temporal dev server that keeps its
state in a file; two ``fleetbatch worker`` processes, ``fleetbatch responder``,
``fleetbatch simulate domain`` and ``fleetbatch simulate consent``. One command
type (``lock_doors``) at a rate (``--rate``, 25/s unless given), so
that "the rate before a fault" means something; batches are fed so that there
is always a backlog.

What breaks it, one fault at a time (the seed fixes the schedule): SIGKILL of
random processes, of all five at once, of the Temporal server (its state file
kept); PostgreSQL stopped for 30 s; NATS restarted. Between faults the operator
pauses a batch (then everything is killed, then it is resumed), cancels batches
under load and redrives a finished one, through the ``fleetbatch`` CLI. A
process that exits on its own is started again and counted as a finding.

Each fault strikes once the deliveries ran steadily for ``--window`` seconds
(at 80 % of the configured rate or more): its "rate before". Its end is when the
process was started again or the service is back; its recovery time runs from
the end until the domain's deliveries (1 s buckets, averaged over the window's
length) are back to 80 % of the rate before, and stay there for another window.
The next fault waits for the recovery.

The checks at the end: every item terminal and every batch finished; the audit
(the domain's journal against the store) agreeing, every successful execution
whose item is not succeeded explained (its item cancelled, or an orphan
response recorded); no dead letter outside a fault; no command published after
its batch's cancel (the domain's deliveries, and the stream's own timestamps,
against ``batches.stop_requested_at``, with 2 s for what was in transit); every
recovery under 30 s; every fault struck at a steady rate; no process exited on
its own; every process stops cleanly on SIGTERM. It prints a table of the faults
and the checks (``--json``: JSON) and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.js import api
from rich.console import Console
from rich.table import Table
from temporalio.client import Client

from fleetbatch.bus import CommandMessage
from fleetbatch.bus.nats import NatsBus, NatsOptions, stream_names
from fleetbatch.config import CommandSettings, Settings
from fleetbatch.domain import TERMINAL, ItemStatus
from fleetbatch.pipelines.vehicle.simulators.domain import read_journal
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.services.audit import audit
from fleetbatch.services.submission import submit_file
from fleetbatch.store import BatchStatus, Store
from fleetbatch.temporal import ensure_search_attributes
from fleetbatch.temporal.converter import DATA_CONVERTER
from fleetbatch_bench.chaos_checks import (
    RECOVERY_SHARE,
    STOP_SLACK_SECONDS,
    AfterCancel,
    DeliveryLog,
    Recovery,
    after_cancel,
    count_between,
    recovered_by,
    recovery,
)
from fleetbatch_bench.chaos_env import (
    Nats,
    Postgres,
    Proc,
    ServiceError,
    TemporalServer,
    missing_binaries,
    services_for,
)
from fleetbatch_bench.report import engine_output_to_stderr

COMMAND = "lock_doors"
QUEUE = "fleetbatch-chaos"
PROCESSES = ("domain", "consent", "responder", "worker-a", "worker-b")
ARGS = {
    "domain": ["simulate", "domain"],
    "consent": ["simulate", "consent"],
    "responder": ["responder"],
    "worker-a": ["worker"],
    "worker-b": ["worker"],
}
READY_LINE = {
    "domain": "domain simulator running",
    "consent": "consent simulator running",
    "responder": "responder running",
}
DONE = {"pause": "paused", "resume": "resumed", "cancel": "cancelling", "redrive": ""}
"""How ``fleetbatch <op>`` starts the line that says it was done."""
RECOVERY_LIMIT_SECONDS = 30.0
STEADY_SHARE = 0.8
"""A fault strikes once the deliveries run at this share of the configured rate."""
DEAD_LETTER_GRACE_SECONDS = 90.0
"""A dead letter is put down to a fault if it was written within this long of the
fault's end (the bus's redeliveries and backoff take that long to give up)."""

err = Console(stderr=True, highlight=False, soft_wrap=True)


# The schedule -----------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    kind: str
    """``kill`` (``targets``), ``kill-all``, ``temporal``, ``postgres`` or ``nats``."""
    down: float
    """Seconds the part stays stopped before it is started again."""
    targets: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.kind == "kill":
            return "SIGKILL " + " + ".join(self.targets)
        return {
            "kill-all": "SIGKILL all 5 processes",
            "temporal": "SIGKILL Temporal server",
            "postgres": "PostgreSQL stopped",
            "nats": "NATS restarted",
        }[self.kind]


@dataclass(frozen=True)
class Op:
    before: int
    """Done before the fault of this index (0-based) and its window, once the one
    before it recovered; at or past the last index: after the last fault."""
    action: str
    """``pause``, ``resume``, ``cancel`` or ``redrive``."""


@dataclass(frozen=True)
class Plan:
    faults: list[Fault]
    ops: list[Op]


def make_plan(faults: int, seed: int, *, pg_down: float = 30.0) -> Plan:
    """A seeded schedule of ``faults`` faults: (up to) two of each service fault and
    of killing everything, the rest SIGKILLs of one or two random processes; a pause
    before the first kill of everything (resumed after it), cancels at a third and
    at three quarters, a redrive at two thirds."""
    rng = random.Random(seed)
    fixed = [
        Fault("postgres", pg_down),
        Fault("nats", rng.choice([1.0, 2.0, 3.0])),
        Fault("temporal", rng.choice([2.0, 3.0, 5.0])),
        Fault("kill-all", rng.choice([2.0, 3.0, 5.0])),
    ]
    chosen = fixed * 2 if faults >= 8 else fixed
    chosen = [replace_down(f, rng) for f in chosen][:faults]
    while len(chosen) < faults:
        targets = rng.sample(PROCESSES, 2 if rng.random() < 0.3 else 1)
        chosen.append(Fault("kill", rng.choice([1.0, 2.0, 3.0, 5.0]), tuple(sorted(targets))))
    rng.shuffle(chosen)
    ops: list[Op] = []
    kill_all = [i for i, f in enumerate(chosen) if f.kind == "kill-all"]
    pause_at = kill_all[0] if kill_all else max(1, faults // 4)
    ops += [Op(pause_at, "pause"), Op(pause_at + 1, "resume")]
    ops.append(Op(max(1, faults // 3), "cancel"))
    ops.append(Op(max(1, 2 * faults // 3), "redrive"))
    if faults >= 10:
        ops.append(Op(3 * faults // 4, "cancel"))
    return Plan(chosen, sorted(ops, key=lambda o: o.before))


def replace_down(fault: Fault, rng: random.Random) -> Fault:
    """The service faults' down times vary with the seed too (PostgreSQL's is fixed)."""
    if fault.kind == "postgres":
        return fault
    pick = [1.0, 2.0, 3.0] if fault.kind == "nats" else [2.0, 3.0, 5.0]
    return Fault(fault.kind, rng.choice(pick), fault.targets)


QUICK_PLAN = Plan(
    faults=[
        Fault("kill", 2.0, ("worker-a",)),
        Fault("kill", 2.0, ("responder",)),
        Fault("nats", 1.0),
        Fault("temporal", 2.0),
    ],
    ops=[Op(1, "cancel"), Op(1, "pause"), Op(3, "resume"), Op(3, "redrive")],
)


@dataclass(frozen=True)
class Options:
    faults: int = 15
    seed: int = 7
    quick: bool = False
    rate: float = 25.0
    window: float = 10.0
    """Seconds of steady deliveries before each fault: its "rate before"."""
    max_wait: float = 60.0
    """Longest wait for a recovery before the next fault (then: not recovered)."""
    pg_down: float = 30.0
    services: str = "private"
    keep: bool = False
    workdir: Path | None = None

    @property
    def plan(self) -> Plan:
        return QUICK_PLAN if self.quick else make_plan(self.faults, self.seed, pg_down=self.pg_down)

    @property
    def hold(self) -> float:
        """How long the rate must stay back for a recovery (the window's length)."""
        return self.window

    @property
    def backlog_seconds(self) -> float:
        """How much work the open batches hold before each fault's window."""
        return (self.window + 40) if self.quick else (self.window + self.pg_down + 90)

    @property
    def batch_items(self) -> int:
        return int(self.rate * (30 if self.quick else 90))


# The record of a run ----------------------------------------------------------------


@dataclass
class FaultRecord:
    index: int
    label: str
    kind: str
    start: float
    end: float = 0.0
    notes: list[str] = field(default_factory=list)
    recovery: Recovery | None = None
    op: bool = False
    """An operator's commands (measured like a fault, not held to its limit)."""


@dataclass
class OpRecord:
    at: float
    action: str
    batch_id: str
    said: str
    code: int


@dataclass
class Finding:
    at: float
    process: str
    code: int
    log_tail: str


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class BatchInfo:
    batch_id: str
    items: int
    role: str = "load"
    paused: bool = False
    stopped: bool = False
    redriven: int = 0


@dataclass
class ChaosReport:
    options: dict[str, Any]
    started: float
    faults: list[FaultRecord]
    ops: list[OpRecord]
    findings: list[Finding]
    checks: list[Check]
    batches: list[BatchInfo]
    cancels: list[AfterCancel]
    counts: dict[str, int]
    machine: str
    workdir: str
    seconds: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> str:
        data = asdict(self)
        data["ok"] = self.ok
        return json.dumps(data, indent=2, default=str)


def machine() -> str:
    cpus = os.cpu_count() or 0
    mem = ""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    python = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {cpus} CPUs{mem}, Python {python}"


# The run ----------------------------------------------------------------------------


class ChaosRun:
    def __init__(self, options: Options, root: Path, pg: Postgres, bus: Nats) -> None:
        self.o = options
        self.root = root
        self.pg = pg
        self.nats = bus
        self.tag = uuid.uuid4().hex[:10]
        self.database = f"fleetbatch_chaos_{self.tag}"
        self.namespace = f"fbchaos_{self.tag}"
        self.temporal = TemporalServer(root)
        self.journal = root / "domain-journal.ndjson"
        self.log = DeliveryLog(root / "deliveries.csv")
        self.procs: dict[str, Proc] = {}
        self.batches: list[BatchInfo] = []
        self.faults: list[FaultRecord] = []
        self.ops: list[OpRecord] = []
        self.findings: list[Finding] = []
        self.cancels: list[AfterCancel] = []
        self.started = time.time()
        self._serial = 0
        self._temporal_down = False
        self._closing = False
        self.store: Store | None = None
        self.client: Client | None = None
        self.settings: Settings | None = None

    # -- set up ---------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        return self.pg.admin_url(self.database)

    def commands(self) -> dict[str, dict[str, Any]]:
        return {
            COMMAND: {
                "rate": f"{self.o.rate:g}/s",
                "response_timeout_seconds": 10,
                "max_attempts": 30,
            }
        }

    def env(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETBATCH_")}
        env.update(
            {
                "FLEETBATCH_ENV_FILE": str(self.root / "no-such.env"),
                "FLEETBATCH_DATA_DIR": str(self.root),
                "FLEETBATCH_TEMPORAL_ADDRESS": self.temporal.address,
                "FLEETBATCH_TEMPORAL_TASK_QUEUE": QUEUE,
                "FLEETBATCH_DATABASE_URL": self.database_url,
                "FLEETBATCH_BUS": self.nats.url,
                "FLEETBATCH_BUS_NAMESPACE": self.namespace,
                "FLEETBATCH_BUS_ACK_WAIT_SECONDS": "10",
                "FLEETBATCH_METRICS_ADDRESS": "",
                "FLEETBATCH_WORKER_HEALTH_FILE": str(self.root / f"{name}-health.json"),
                "FLEETBATCH_COMMANDS": json.dumps(self.commands()),
                "FLEETBATCH_IDLE_CLOSE_AFTER_SECONDS": "2",
                "FLEETBATCH_SIM_JOURNAL": str(self.journal),
                "FLEETBATCH_SIM_LOG_FILE": str(self.log.path),
                "FLEETBATCH_SIM_LATENCY_MS": "10",
                "FLEETBATCH_SIM_LATENCY_JITTER_MS": "5",
                "FLEETBATCH_SIM_FAILURE_RATE": "0.02",
                "FLEETBATCH_SIM_TIMEOUT_RATE": "0.002",
                "FLEETBATCH_SIM_NO_CONSENT_RATE": "0.01",
                "FLEETBATCH_SIM_SEED": str(self.o.seed),
            }
        )
        return env

    async def setup(self) -> None:
        say("PostgreSQL, NATS and the Temporal server…")
        await self.pg.setup()
        await self.pg.execute(f'CREATE DATABASE "{self.database}"')
        await self.nats.setup()
        await self.temporal.start()
        self.client = await Client.connect(self.temporal.address, data_converter=DATA_CONVERTER)
        await ensure_search_attributes(self.client)
        self.store = await Store.open(self.database_url)
        self.settings = Settings(
            data_dir=self.root,
            database_url=self.database_url,
            temporal_address=self.temporal.address,
            temporal_task_queue=QUEUE,
            bus=self.nats.url,
            bus_namespace=self.namespace,
            commands={k: CommandSettings(**v) for k, v in self.commands().items()},
            chunk_size=100,
            max_in_flight=20,
            idle_close_after_seconds=2,
        )
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        for name in PROCESSES:
            self.procs[name] = Proc(name, ARGS[name], self.env(name), logs)
            self.procs[name].start()
        say("the five processes…")
        await self.until_ready(timeout=180)

    async def until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            waiting = [name for name, p in self.procs.items() if not self.ready(name, p)]
            if not waiting:
                return
            for name in waiting:
                code = self.procs[name].exited()
                if code is not None:
                    raise ServiceError(
                        f"{name} exited ({code}) while starting:\n{self.procs[name].tail(20)}"
                    )
            if time.monotonic() > deadline:
                raise ServiceError(f"not ready within {timeout:g}s: {', '.join(waiting)}")
            await asyncio.sleep(0.5)

    def ready(self, name: str, proc: Proc) -> bool:
        if name.startswith("worker"):
            with contextlib.suppress(OSError, ValueError):
                health = json.loads((self.root / f"{name}-health.json").read_text())
                return bool(health.get("status") == "ready" and health.get("pid"))
            return False
        try:
            return READY_LINE[name] in proc.log.read_text(errors="replace")
        except OSError:
            return False

    # -- work -------------------------------------------------------------------------

    async def submit(
        self, items: int, role: str = "load", priority: float | None = None
    ) -> BatchInfo:
        assert self.store is not None and self.client is not None and self.settings is not None
        first, self._serial = self._serial, self._serial + items
        data = "vin\n" + "".join(f"{make_vin(first + i)}\n" for i in range(items))
        upload = await submit_file(
            self.store,
            self.client,
            self.settings,
            io.BytesIO(data.encode()),
            filename=f"chaos-{len(self.batches)}.csv",
            options={"command": COMMAND},
            priority=priority,
        )
        info = BatchInfo(upload.batch_id, upload.accepted, role)
        self.batches.append(info)
        return info

    async def backlog(self) -> int:
        """Commands still to be sent for the batches that run (not paused or stopped):
        their items less the commands the domain has seen. (The store's pending and
        in-flight items would count the answered items of every chunk still running.)"""
        self.log.read()
        return sum(
            max(0, b.items - len(self.log.commands.get(b.batch_id, ())))
            for b in self.batches
            if not (b.paused or b.stopped)
        )

    async def feed(self, batches: int = 1) -> None:
        """Submit batches until the running ones hold ``backlog_seconds`` of work, in at
        least ``batches`` batches."""
        target = int(self.o.rate * self.o.backlog_seconds)
        while await self.backlog() < target or len(self.running()) < batches:
            info = await self.submit(self.o.batch_items)
            say(f"  fed batch {info.batch_id} ({info.items:,} VINs)")

    def running(self) -> list[BatchInfo]:
        """The load batches that run (not paused, not cancelled), oldest first."""
        return [b for b in self.batches if b.role == "load" and not (b.paused or b.stopped)]

    # -- faults -----------------------------------------------------------------------

    async def inject(self, index: int, fault: Fault) -> FaultRecord:
        record = FaultRecord(index, fault.label, fault.kind, time.time())
        if fault.kind in ("kill", "kill-all"):
            names = fault.targets if fault.kind == "kill" else PROCESSES
            for name in names:
                self.procs[name].kill()
            await asyncio.sleep(fault.down)
            for name in names:
                self.procs[name].start()
            record.end = time.time()
            record.notes.append(f"down {fault.down:g} s, then started again")
        elif fault.kind == "temporal":
            self._temporal_down = True
            self.temporal.kill()
            await asyncio.sleep(fault.down)
            restarted = time.time()
            await self.temporal.start()
            self._temporal_down = False
            record.end = time.time()
            record.notes.append(
                f"down {fault.down:g} s; state file kept; answered "
                f"{record.end - restarted:.1f} s after its start"
            )
        elif fault.kind == "postgres":
            await self.pg.stop()
            stopped = time.time()
            await asyncio.sleep(max(0.0, fault.down - (stopped - record.start)))
            await self.pg.start()
            record.end = time.time()
            record.notes.append(f"stopped {record.end - record.start:.1f} s (fast shutdown)")
        elif fault.kind == "nats":
            await self.nats.stop()
            await asyncio.sleep(fault.down)
            await self.nats.start()
            record.end = time.time()
            record.notes.append(f"down {record.end - record.start:.1f} s (SIGTERM, start)")
        else:  # pragma: no cover - make_plan makes no other kind
            raise ValueError(fault.kind)
        return record

    async def settle(self) -> float:
        """Wait for a steady rate: a window whose rate is at least ``STEADY_SHARE`` of
        the configured one (at most ``max_wait`` s more); its rate."""
        await asyncio.sleep(self.o.window)
        deadline = time.monotonic() + self.o.max_wait
        while True:
            self.log.read()
            now = time.time()
            rate = count_between(self.log.times, now - self.o.window, now) / self.o.window
            if rate >= STEADY_SHARE * self.o.rate or time.monotonic() > deadline:
                return rate
            await asyncio.sleep(1)

    async def until_recovered(self, record: FaultRecord) -> None:
        """Until the rate is back (or ``max_wait``); work is added should the batches
        run out of it meanwhile (a recovery is no recovery without work to do)."""
        checked = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            if time.monotonic() - checked > 5:
                checked = time.monotonic()
                low = self.o.rate * (self.o.window + self.o.hold + 10)
                if await self.backlog() < low:
                    await self.feed()
                    record.notes.append("fed more work while waiting for the recovery")
            self.log.read()
            now = time.time()
            found = recovered_by(
                self.log.times,
                record.start,
                record.end,
                now,
                window=self.o.window,
                hold=self.o.hold,
            )
            if found is not None:
                say(f"  recovered {found:.0f} s after its end")
                return
            if now - record.end > self.o.max_wait + self.o.hold + self.o.window:
                say(f"  not recovered within {self.o.max_wait:g} s")
                return

    async def supervise(self) -> None:
        """Start again any process (or the Temporal server) that exits on its own."""
        while not self._closing:
            for name, proc in self.procs.items():
                code = proc.exited()
                if code is None or proc.expected_down or self._closing:
                    continue
                self.findings.append(Finding(time.time(), name, code, proc.tail(8)))
                say(f"  FINDING: {name} exited ({code}) on its own; starting it again")
                proc.expected_down = True
                await asyncio.sleep(1)
                proc.start()
            code = self.temporal.exited()
            if code is not None and not self._temporal_down and not self._closing:
                self.findings.append(Finding(time.time(), "temporal server", code, ""))
                say(f"  FINDING: the Temporal server exited ({code}); starting it again")
                self._temporal_down = True
                with contextlib.suppress(ServiceError):
                    await self.temporal.start()
                self._temporal_down = False
            await asyncio.sleep(0.5)

    # -- the operator -----------------------------------------------------------------

    async def cli(self, *args: str) -> tuple[int, str]:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "fleetbatch.cli.main", *args],
            # A crash shows the Python stacks of every thread (faulthandler).
            env=self.env("cli") | {"COLUMNS": "200", "PYTHONFAULTHANDLER": "1"},
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr).strip()

    async def warm_up(self) -> None:
        """A small batch with four times the others' share of the rate (it finishes
        early, to be redriven later), and the load."""
        info = await self.submit(max(200, int(self.o.rate * 8)), role="warm-up", priority=4)
        say(f"warm-up batch {info.batch_id} ({info.items:,} VINs, priority 4)")
        await self.feed()

    async def until_finished(self, batch_id: str, timeout: float) -> bool:
        assert self.store is not None
        deadline = time.monotonic() + timeout
        while (await self.store.batches.get(batch_id)).status not in BatchStatus.FINISHED:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.5)
        return True

    async def operations(self, ops: Sequence[Op]) -> None:
        """The operator's commands between two faults, after a window of steady rate,
        measured like a fault: its rate before, and how soon the rate is back."""
        if not ops:
            return
        # A batch paused or cancelled leaves others to take up the rate.
        await self.feed(batches=1 + sum(op.action in ("pause", "cancel") for op in ops))
        await self.settle()
        record = FaultRecord(0, "", "op", time.time(), op=True)
        for op in ops:
            done = await self.operate(op)
            record.notes.append(done)
        record.label = "operator: " + ", ".join(op.action for op in ops)
        record.end = time.time()
        self.faults.append(record)
        await self.until_recovered(record)

    async def operate(self, op: Op) -> str:
        assert self.store is not None
        target = self.pick(op.action)
        if target is None:
            self.ops.append(OpRecord(time.time(), op.action, "-", "no batch to do it to", 1))
            say(f"  {op.action}: no batch to do it to")
            return f"{op.action}: no batch to do it to"
        args = [op.action, target.batch_id]
        if op.action == "redrive" and not await self.until_finished(target.batch_id, 120):
            say(f"  the warm-up batch {target.batch_id} has not finished: redriving anyway")
        if op.action == "cancel":
            args += ["--reason", "chaos run: cancelled under load"]
        at = time.time()
        code, said = await self.cli(*args)
        self.ops.append(OpRecord(at, op.action, target.batch_id, said, code))
        first = said.splitlines()[0] if said else f"exit {code}"
        say(f"  fleetbatch {' '.join(args)} → {first}" + (f" (exit {code})" if code else ""))
        # What it printed says whether it was done (an exit code can be wrong: a crash
        # at the interpreter's exit after the work); the code is checked on its own.
        if not first.startswith(f"batch {target.batch_id}: {DONE[op.action]}"):
            return f"{op.action} {target.batch_id} failed (exit {code}): {first}"
        if op.action == "pause":
            target.paused = True
        elif op.action == "resume":
            target.paused = False
        elif op.action == "cancel":
            target.stopped = True
            record = await self.store.batches.get(target.batch_id)
            stop = record.stop_requested_at
            if stop is not None:
                self.cancels.append(AfterCancel(target.batch_id, stop.timestamp(), said=said))
        elif op.action == "redrive":
            target.redriven += 1
            target.role = "redriven"
        shown = first.removeprefix(f"batch {target.batch_id}: ")
        return f"{op.action} {target.batch_id}: {shown}" + (f" (exit {code})" if code else "")

    def pick(self, action: str) -> BatchInfo | None:
        """The batch an operation goes to: pause and cancel a loaded batch that runs,
        resume the paused one, redrive the first finished one (the warm-up batch)."""
        if action == "resume":
            return next((b for b in self.batches if b.paused), None)
        if action == "redrive":
            return next((b for b in self.batches if b.role == "warm-up" and not b.redriven), None)
        running = self.running()
        # The most recent batch still has most of its items to run.
        return running[-1] if len(running) >= 2 else None

    # -- the end ----------------------------------------------------------------------

    async def drain(self) -> None:
        """Until every batch finished (no more feeding)."""
        assert self.store is not None
        backlog = await self.backlog()
        timeout = backlog / self.o.rate * 2 + 240
        say(f"draining {backlog:,} items (at most {timeout:.0f} s)…")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            statuses = [(await self.store.batches.get(b.batch_id)).status for b in self.batches]
            if all(s in BatchStatus.FINISHED for s in statuses):
                return
            await asyncio.sleep(1)
        say("  not every batch finished in time")

    async def stop_processes(self) -> list[tuple[str, int | None]]:
        self._closing = True
        codes = []
        for name in ("worker-a", "worker-b", "responder", "consent", "domain"):
            proc = self.procs.get(name)
            if proc is not None:
                codes.append((name, await asyncio.to_thread(proc.terminate)))
        return codes

    async def stream_messages(self) -> dict[str, list[tuple[float, str]]]:
        """Every command in the commands stream by batch: (stream time, command id)."""
        found: dict[str, list[tuple[float, str]]] = {}
        nc = await nats.connect(self.nats.url, connect_timeout=5, max_reconnect_attempts=2)
        try:
            js = nc.jetstream()
            commands, _ = stream_names(self.namespace)
            psub = await js.pull_subscribe(
                f"{self.namespace}.commands.>",
                stream=commands,
                config=api.ConsumerConfig(
                    ack_policy=api.AckPolicy.NONE,
                    deliver_policy=api.DeliverPolicy.ALL,
                    inactive_threshold=60,
                ),
            )
            while True:
                try:
                    msgs = await psub.fetch(1000, timeout=2)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                for msg in msgs:
                    message = CommandMessage.decode(msg.data)
                    stamp = msg.metadata.timestamp.timestamp()
                    found.setdefault(message.batch_id, []).append((stamp, message.command_id))
                if msgs and msgs[-1].metadata.num_pending == 0:
                    break
            with contextlib.suppress(Exception):
                await psub.unsubscribe()
        finally:
            await nc.close()
        return found

    async def check(
        self, stop_codes: list[tuple[str, int | None]]
    ) -> tuple[list[Check], dict[str, int]]:
        assert self.store is not None
        checks: list[Check] = []
        self.log.read()
        times = self.log.times
        for i, record in enumerate(self.faults):
            until = record.end + self.o.max_wait + self.o.hold + self.o.window
            if i + 1 < len(self.faults):
                until = min(until, self.faults[i + 1].start)
            record.recovery = recovery(
                times,
                record.start,
                record.end,
                window=self.o.window,
                hold=self.o.hold,
                until=until,
            )

        # Every item terminal, every batch finished.
        totals: dict[str, int] = {s.value: 0 for s in ItemStatus}
        unfinished = []
        for b in self.batches:
            for status, n in (await self.store.items.counts(b.batch_id)).items():
                totals[status] += n
            batch = await self.store.batches.get(b.batch_id)
            if batch.status not in BatchStatus.FINISHED:
                unfinished.append(f"{b.batch_id} ({batch.status})")
        items = sum(totals.values())
        open_items = items - sum(totals[s.value] for s in TERMINAL)
        checks.append(
            Check(
                "every item terminal, every batch finished",
                open_items == 0 and not unfinished,
                f"{items:,} items in {len(self.batches)} batches: "
                + ", ".join(f"{n:,} {s}" for s, n in totals.items() if n)
                + (f"; not finished: {', '.join(unfinished)}" if unfinished else ""),
            )
        )

        # The audit.
        ids = [b.batch_id for b in self.batches]
        report = await audit(self.store, ids, read_journal(self.journal))
        orphans: set[str] = set()
        status_of: dict[str, str] = {}
        for batch_id in ids:
            orphans |= {o.effect_id for o in await self.store.orphans.list(batch_id, 1_000_000)}
            async for row in self.store.items.stream(batch_id):
                status_of[row["effect_id"]] = row["status"]
        explained = [
            c
            for c in report.executed_not_succeeded
            if status_of.get(c) == ItemStatus.CANCELLED or c in orphans
        ]
        unexplained = sorted(set(report.executed_not_succeeded) - set(explained))
        checks.append(
            Check(
                "the audit agrees (exactly once)",
                not (
                    report.executed_twice
                    or report.succeeded_not_executed
                    or unexplained
                    or report.not_terminal
                ),
                f"{report.executions:,} executions; executed twice: {len(report.executed_twice)}; "
                f"succeeded but not executed: {len(report.succeeded_not_executed)}; executed "
                f"but not succeeded: {len(report.executed_not_succeeded)} "
                f"({len(explained)} cancelled or an orphan response, {len(unexplained)} "
                f"unexplained{': ' + ', '.join(unexplained[:5]) if unexplained else ''})",
            )
        )

        # Dead letters.
        letters = await self.store.dead_letters.list(include_replayed=True, limit=100_000)
        outside = [
            d
            for d in letters
            if not any(
                f.start <= d.created_at.timestamp() <= f.end + DEAD_LETTER_GRACE_SECONDS
                for f in self.faults
            )
        ]
        checks.append(
            Check(
                "no dead letter unexplained",
                not outside,
                f"{len(letters)} dead letters, {len(letters) - len(outside)} during a fault"
                + (
                    "; outside any fault: "
                    + "; ".join(f"{d.subject}: {d.error}" for d in outside[:3])
                    if outside
                    else ""
                ),
            )
        )

        # Nothing published after a cancel.
        stream = await self.stream_messages()
        for i, c in enumerate(self.cancels):
            self.cancels[i] = after_cancel(
                self.log.deliveries, c.batch_id, c.stop_at, stream.get(c.batch_id, [])
            )
            self.cancels[i].said = c.said
        worst = max((c.last_delivery_delay or 0.0 for c in self.cancels), default=0.0)
        checks.append(
            Check(
                "no command published after its batch's cancel",
                bool(self.cancels) and all(c.ok for c in self.cancels),
                (
                    f"{len(self.cancels)} cancels; new commands delivered more than "
                    f"{STOP_SLACK_SECONDS:g} s after the stop: "
                    f"{sum(len(c.new_after) for c in self.cancels)}; taken in by the stream "
                    f"after it: {sum(len(c.published_after) for c in self.cancels)}; "
                    f"redeliveries after it: {sum(c.repeats_after for c in self.cancels)}; "
                    f"last delivery {worst:.2f} s after a stop"
                )
                if self.cancels
                else "no cancel was made",
            )
        )

        # Recoveries.
        faults = [f for f in self.faults if not f.op]
        slow = [
            f
            for f in faults
            if f.recovery is None
            or f.recovery.seconds is None
            or f.recovery.seconds >= RECOVERY_LIMIT_SECONDS
        ]
        idle = [f for f in faults if f.recovery is not None and f.recovery.before <= 0]
        longest = max(
            (f.recovery.seconds or 0.0 for f in faults if f.recovery is not None), default=0.0
        )
        checks.append(
            Check(
                f"every recovery under {RECOVERY_LIMIT_SECONDS:g} s",
                not slow and not idle and bool(faults),
                f"{len(faults)} faults, longest recovery {longest:g} s"
                + (
                    f"; too slow: {', '.join(f'#{f.index} {f.label}' for f in slow)}"
                    if slow
                    else ""
                )
                + (
                    f"; no deliveries before: {', '.join(f'#{f.index}' for f in idle)}"
                    if idle
                    else ""
                ),
            )
        )

        unsteady = [
            f
            for f in faults
            if f.recovery is not None and f.recovery.before < STEADY_SHARE * self.o.rate
        ]
        checks.append(
            Check(
                "every fault struck at a steady rate",
                not unsteady,
                f"rate before each fault at least {STEADY_SHARE:.0%} of {self.o.rate:g}/s"
                + (
                    "; not: "
                    + ", ".join(
                        f"#{f.index} ({f.recovery.before:.1f}/s)" for f in unsteady if f.recovery
                    )
                    if unsteady
                    else ""
                ),
            )
        )
        checks.append(
            Check(
                "no process exited on its own",
                not self.findings,
                f"{len(self.findings)} exits"
                + "".join(f"; {f.process} exited {f.code}" for f in self.findings),
            )
        )
        unclean = [f"{n} ({c})" for n, c in stop_codes if c != 0]
        checks.append(
            Check(
                "every process stops cleanly on SIGTERM",
                not unclean,
                "all exited 0" if not unclean else "not 0: " + ", ".join(unclean),
            )
        )
        failed_ops = [
            f"{o.action} {o.batch_id} exited {o.code}"
            + (" (SIGSEGV)" if o.code == -signal.SIGSEGV else "")
            + f" after: {o.said.splitlines()[0] if o.said else '(nothing)'}"
            for o in self.ops
            if o.code != 0
        ]
        checks.append(
            Check(
                "every operator command succeeded (exit 0)",
                not failed_ops,
                f"{len(self.ops)} commands: "
                + ", ".join(f"{o.action} {o.batch_id}" for o in self.ops)
                + (f"; failed: {'; '.join(failed_ops)}" if failed_ops else ""),
            )
        )
        return checks, totals

    async def close(self) -> None:
        """Stop what the run started; leave PostgreSQL and NATS as the machine needs them."""
        self._closing = True
        for proc in self.procs.values():
            with contextlib.suppress(Exception):
                proc.kill()
        self.temporal.stop()
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.close()
        with contextlib.suppress(Exception):
            await self.nats.setup()
            bus = await NatsBus.connect(self.nats.url, NatsOptions(namespace=self.namespace))
            await bus.delete_streams()
            await bus.close()
        with contextlib.suppress(Exception):
            await self.pg.setup()
            await self.pg.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def say(message: str) -> None:
    err.print(f"[{time.strftime('%H:%M:%S')}] {message}")


async def run_chaos(o: Options) -> ChaosReport:
    """Run the schedule and the checks; PostgreSQL and NATS are running again afterwards
    (whatever happens, a failure or Ctrl+C included)."""
    missing = missing_binaries(o.services)
    if missing:
        raise ServiceError(f"the chaos run needs {' and '.join(missing)}")
    root = Path(tempfile.mkdtemp(prefix="fleetbatch-chaos-", dir=o.workdir))
    pg, bus = services_for(o.services, root)
    run = ChaosRun(o, root, pg, bus)
    plan = o.plan
    supervisor: asyncio.Task[None] | None = None
    ok = False
    try:
        try:
            await run.setup()
            supervisor = asyncio.create_task(run.supervise())
            say(f"warm-up: {len(plan.faults)} faults to come (seed {o.seed})")
            await run.warm_up()
            for index, fault in enumerate(plan.faults, 1):
                await run.operations([op for op in plan.ops if op.before == index - 1])
                await run.feed()
                await run.settle()
                say(f"fault {index}/{len(plan.faults)}: {fault.label}")
                record = await run.inject(index, fault)
                run.faults.append(record)
                await run.until_recovered(record)
            await run.operations([op for op in plan.ops if op.before >= len(plan.faults)])
            await run.drain()
            stop_codes = await run.stop_processes()
        finally:
            run._closing = True
            if supervisor is not None:
                supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervisor
        say("checking…")
        checks, totals = await run.check(stop_codes)
        report = ChaosReport(
            options={k: str(v) if isinstance(v, Path) else v for k, v in asdict(o).items()},
            started=run.started,
            faults=run.faults,
            ops=run.ops,
            findings=run.findings,
            checks=checks,
            batches=run.batches,
            cancels=run.cancels,
            counts=totals,
            machine=machine(),
            workdir=str(root),
            seconds=time.time() - run.started,
        )
        ok = report.ok
        return report
    finally:
        await run.close()
        await pg.teardown()
        await bus.teardown()
        if o.keep or not ok:
            say(f"logs and journal kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


# Output -----------------------------------------------------------------------------


def fault_rows(report: ChaosReport) -> list[list[str]]:
    rows = []
    for f in report.faults:
        r = f.recovery
        notes = list(f.notes)
        for finding in report.findings:
            if f.start <= finding.at <= f.end + 60:
                notes.append(f"FINDING: {finding.process} exited {finding.code}")
        rows.append(
            [
                "op" if f.op else str(f.index),
                f.label,
                f"{f.start - report.started:.0f}",
                f"{f.end - f.start:.1f}",
                f"{r.before:.1f}" if r else "-",
                "-" if r is None or r.seconds is None else f"{r.seconds:.0f}",
                "; ".join(notes),
            ]
        )
    return rows


FAULT_HEADERS = ["#", "fault", "at s", "duration s", "rate before /s", "recovery s", "notes"]


def print_report(report: ChaosReport, console: Console) -> None:
    table = Table(*FAULT_HEADERS, title="faults")
    for row in fault_rows(report):
        table.add_row(*row)
    console.print(table)
    checks = Table("check", "result", "detail", title="checks")
    for c in report.checks:
        checks.add_row(c.name, "ok" if c.ok else "FAILED", c.detail)
    console.print(checks)
    console.print(
        f"{'all checks passed' if report.ok else 'CHECKS FAILED'} · "
        f"{sum(not f.op for f in report.faults)} faults "
        f"in {report.seconds:.0f} s · recovered = back to {RECOVERY_SHARE:.0%} of the rate "
        f"before ({report.options['window']:g} s averages, held "
        f"{report.options['window']:g} s) · {report.machine}",
        highlight=False,
    )


def markdown(report: ChaosReport) -> str:
    """The tables as Markdown (for docs/production.md)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line(FAULT_HEADERS), line(["---"] * len(FAULT_HEADERS))]
    out += [line(row) for row in fault_rows(report)]
    out += ["", line(["check", "result", "detail"]), line(["---"] * 3)]
    out += [line([c.name, "ok" if c.ok else "FAILED", c.detail]) for c in report.checks]
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m fleetbatch_bench.chaos",
        description="Break the production shape on a seeded schedule and check what is left.",
    )
    parser.add_argument("--faults", type=int, default=15, help="how many faults (default 15)")
    parser.add_argument("--seed", type=int, default=7, help="the fault schedule's seed")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the CI preset: 4 faults (a worker, the responder, NATS, Temporal), short windows",
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="lock_doors per second (default 25: well below what a 2-CPU machine sustains "
        "in this shape, so that the rate before a fault is flat)",
    )
    parser.add_argument("--window", type=float, help="seconds of steady rate before each fault")
    parser.add_argument("--max-wait", type=float, default=60.0, help="longest recovery wait")
    parser.add_argument("--pg-down", type=float, default=30.0, help="PostgreSQL's stop, s")
    parser.add_argument(
        "--services",
        choices=["private", "machine"],
        default="private",
        help="PostgreSQL and NATS of the run's own (default), or the machine's own "
        "(127.0.0.1:5432 / :4222, restarted in place and always left running)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--output", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    parser.add_argument("--workdir", type=Path, help="where the run's directory goes")
    args = parser.parse_args(argv)
    if args.faults < 1:
        parser.error("--faults must be at least 1")
    window = args.window if args.window is not None else (5.0 if args.quick else 10.0)
    options = Options(
        faults=len(QUICK_PLAN.faults) if args.quick else args.faults,
        seed=args.seed,
        quick=args.quick,
        rate=args.rate if args.rate is not None else 25.0,
        window=window,
        max_wait=args.max_wait,
        pg_down=args.pg_down,
        services=args.services,
        keep=args.keep,
        workdir=args.workdir,
    )
    return options, args


async def _main(options: Options) -> ChaosReport:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    # SIGTERM and Ctrl+C cancel the run, so that its finally blocks restore the services.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    return await run_chaos(options)


def main(argv: Sequence[str] | None = None) -> int:
    options, args = parse_args(argv)
    out = Console(width=220)
    try:
        with engine_output_to_stderr():
            report = asyncio.run(_main(options))
    except ServiceError as exc:
        err.print(f"error: {exc}")
        return 2
    except (asyncio.CancelledError, KeyboardInterrupt):
        err.print("interrupted; PostgreSQL and NATS were left running")
        return 130
    if args.output is not None:
        args.output.write_text(report.to_json() + "\n")
    if args.json:
        print(report.to_json())
    elif args.markdown:
        print(markdown(report))
    else:
        print_report(report, out)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["ChaosReport", "Options", "main", "make_plan", "run_chaos"]
