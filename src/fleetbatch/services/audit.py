"""Exactly-once audit: the domain's record of executions against the store's outcomes.

Holds when every command id was executed at most once, every succeeded item's
command was executed successfully, every successful execution belongs to a
succeeded item, and every item is terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fleetbatch.bus import ResponseMessage
from fleetbatch.domain import TERMINAL, ItemStatus
from fleetbatch.store import Store


@dataclass
class AuditReport:
    """What disagrees; empty lists mean the batches and the domain agree."""

    items: int = 0
    executions: int = 0
    executed_twice: list[str] = field(default_factory=list)
    """Command ids the domain executed more than once."""
    succeeded_not_executed: list[str] = field(default_factory=list)
    executed_not_succeeded: list[str] = field(default_factory=list)
    """Successful executions whose item is not recorded succeeded (a late answer: see orphans)."""
    not_terminal: list[str] = field(default_factory=list)
    """VINs whose item is still pending or in flight."""

    @property
    def ok(self) -> bool:
        """Whether nothing disagrees."""
        return not (
            self.executed_twice
            or self.succeeded_not_executed
            or self.executed_not_succeeded
            or self.not_terminal
        )


async def audit(
    store: Store, batch_ids: Sequence[str], executions: Iterable[ResponseMessage]
) -> AuditReport:
    """Compare the domain's ``executions`` (its journal) with the items of ``batch_ids``."""
    report = AuditReport()
    wanted = set(batch_ids)
    counts: Counter[str] = Counter()
    succeeded_by_domain: set[str] = set()
    for execution in executions:
        if execution.batch_id not in wanted:
            continue
        counts[execution.command_id] += 1
        if execution.ok:
            succeeded_by_domain.add(execution.command_id)
    report.executions = sum(counts.values())
    report.executed_twice = sorted(c for c, n in counts.items() if n > 1)
    succeeded_in_store: set[str] = set()
    for batch_id in batch_ids:
        async for row in store.items.stream(batch_id):
            report.items += 1
            status = ItemStatus(row["status"])
            if status not in TERMINAL:
                report.not_terminal.append(row["key"])
            if status is ItemStatus.SUCCEEDED:
                succeeded_in_store.add(row["effect_id"])
    report.succeeded_not_executed = sorted(succeeded_in_store - succeeded_by_domain)
    report.executed_not_succeeded = sorted(succeeded_by_domain - succeeded_in_store)
    return report
