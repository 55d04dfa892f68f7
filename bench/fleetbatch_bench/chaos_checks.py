"""The chaos run's measurements, as pure functions of what the domain saw.

The domain simulator logs each delivery as ``unix time,batch id,command id``
(``FLEETBATCH_SIM_LOG_FILE``). From that log: the delivery rate in 1 s buckets,
each fault's recovery time, and whether anything reached the domain after its
batch's cancel.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RECOVERY_SHARE = 0.8
"""Recovered: the delivery rate is back to this share of the rate before the fault."""
STOP_SLACK_SECONDS = 2.0
"""A delivery counts as after its batch's cancel only this long after the stop was
accepted: a publish that began before the stop is still in transit on the bus."""


@dataclass(frozen=True, slots=True)
class Delivery:
    at: float
    batch_id: str
    command_id: str


def parse_deliveries(lines: Iterable[str]) -> list[Delivery]:
    """The deliveries of log lines; a line a kill cut short (or ran into the next
    process's first line) is skipped."""
    found = []
    for line in lines:
        parts = line.strip().split(",")
        if len(parts) != 3 or not all(parts):
            continue
        try:
            found.append(Delivery(float(parts[0]), parts[1], parts[2]))
        except ValueError:
            continue
    return found


class DeliveryLog:
    """Reads the domain's delivery log as it grows (every start of the simulator
    appends to the same file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._rest = ""
        self.deliveries: list[Delivery] = []
        self.times: list[float] = []
        """Delivery times, sorted."""
        self.commands: dict[str, set[str]] = {}
        """The command ids delivered so far, by batch."""

    def read(self) -> int:
        """Take in what was appended since the last read; how many deliveries that was."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        self._offset += len(data)
        text = self._rest + data.decode(errors="replace")
        lines = text.split("\n")
        self._rest = lines.pop()  # an unfinished line waits for the rest
        new = parse_deliveries(lines)
        self.deliveries.extend(new)
        for d in new:
            bisect.insort(self.times, d.at)
            self.commands.setdefault(d.batch_id, set()).add(d.command_id)
        return len(new)


def count_between(times: Sequence[float], start: float, end: float) -> int:
    """Deliveries at ``start <= t < end`` (``times`` sorted)."""
    return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)


def per_second(times: Sequence[float], start: float, seconds: int) -> list[int]:
    """Deliveries in each 1 s bucket from ``start``."""
    return [count_between(times, start + i, start + i + 1) for i in range(seconds)]


@dataclass
class Recovery:
    before: float
    """Deliveries per second in the window before the fault."""
    seconds: float | None
    """From the fault's end until the rate was back (None: not within the horizon)."""
    during: float
    """Deliveries per second from the fault's start to its end."""
    lowest: int
    """The fewest deliveries in one second from the fault's start until recovery."""


def recovery(
    times: Sequence[float],
    start: float,
    end: float,
    *,
    window: float,
    hold: float,
    until: float,
    share: float = RECOVERY_SHARE,
) -> Recovery:
    """How long after ``end`` the delivery rate was back to ``share`` of the rate in
    the ``window`` seconds before ``start``, and stayed back.

    The rate is counted in 1 s buckets and averaged over ``window`` seconds, like the
    rate before. Recovered after ``k`` seconds: every ``window``-second average that
    starts ``k`` to ``k + hold`` seconds after ``end`` reaches the mark. So a burst of
    redelivered backlog followed by a sag is no recovery, nor is one good second.
    Only deliveries before ``until`` (now, or the next fault) are looked at.
    """
    before = count_between(times, start - window, start) / window
    during = count_between(times, start, end) / max(end - start, 1e-9)
    need = share * before * window
    seconds = int(window)
    steps = int(until - end - window - hold) + 1
    buckets = per_second(times, end, max(0, steps + int(hold) + seconds))
    sums = [sum(buckets[j : j + seconds]) for j in range(max(0, steps + int(hold)))]
    found: float | None = None
    for k in range(max(0, steps)):
        if all(total >= need for total in sums[k : k + int(hold) + 1]):
            found = float(k)
            break
    span = int(found if found is not None else max(0.0, until - end)) + 1
    lowest = min(per_second(times, start, max(1, int(end - start) + span)))
    return Recovery(before, found, during, lowest)


def recovered_by(
    times: Sequence[float], start: float, end: float, now: float, *, window: float, hold: float
) -> float | None:
    """While the run waits: the recovery time, if the deliveries until ``now`` show it."""
    return recovery(times, start, end, window=window, hold=hold, until=now).seconds


@dataclass
class AfterCancel:
    """What reached the domain, and what the bus took in, for a batch after its stop."""

    batch_id: str
    stop_at: float
    """``batches.stop_requested_at``: when the cancel was accepted (unix time)."""
    said: str = ""
    """What ``fleetbatch cancel`` printed."""
    delivered_after: int = 0
    """Deliveries more than the slack after the stop."""
    new_after: list[str] = field(default_factory=list)
    """Command ids first delivered more than the slack after the stop: published after it."""
    repeats_after: int = 0
    """Deliveries after the slack of commands delivered before (a redelivery)."""
    last_delivery_delay: float | None = None
    """Seconds from the stop to the batch's last delivery after it (None: none after)."""
    published_after: list[str] = field(default_factory=list)
    """Commands the bus's stream took in more than the slack after the stop."""
    last_publish_delay: float | None = None
    """Seconds from the stop to the batch's last message in the stream after it."""

    @property
    def ok(self) -> bool:
        return not self.new_after and not self.published_after


def after_cancel(
    deliveries: Iterable[Delivery],
    batch_id: str,
    stop_at: float,
    stream: Iterable[tuple[float, str]] = (),
    *,
    slack: float = STOP_SLACK_SECONDS,
) -> AfterCancel:
    """Compare the batch's deliveries (and the stream's ``(time, command id)`` of its
    messages) with its stop."""
    result = AfterCancel(batch_id, stop_at)
    first: dict[str, float] = {}
    mine = sorted((d for d in deliveries if d.batch_id == batch_id), key=lambda d: d.at)
    for d in mine:
        first.setdefault(d.command_id, d.at)
    late = [d for d in mine if d.at > stop_at]
    if late:
        result.last_delivery_delay = late[-1].at - stop_at
    for d in late:
        if d.at <= stop_at + slack:
            continue
        result.delivered_after += 1
        if first[d.command_id] > stop_at + slack:
            if d.command_id not in result.new_after:
                result.new_after.append(d.command_id)
        else:
            result.repeats_after += 1
    published = sorted(stream)
    after = [(t, c) for t, c in published if t > stop_at]
    if after:
        result.last_publish_delay = after[-1][0] - stop_at
    result.published_after = [c for t, c in after if t > stop_at + slack]
    return result
