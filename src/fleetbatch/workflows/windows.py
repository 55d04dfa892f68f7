"""The batch workflow's schedule: whether it may start chunks now, and when that
changes. Deterministic: the rollout and ``workflow.now()`` in, decisions out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fleetbatch.domain.rollout import Rollout
from fleetbatch.domain.schedule import ScheduleState, parse_window, schedule_state

WINDOW_OPEN = "open"
WINDOW_WAITING = "waiting"
"""Before the start time or outside every window: no chunk starts, nothing is published."""
WINDOW_ENDED = "ended"
"""Past the end time: the batch was paused or cancelled then."""


@dataclass
class WindowState:
    """Where a scheduled batch is; part of the state carried across runs."""

    state: str = WINDOW_OPEN
    until: float | None = None
    """When ``state`` changes next (seconds since the epoch); None: it does not."""
    held: bool = False
    """The running chunks were told to hold their publishes (a window closed)."""
    ended: bool = False
    """The end time passed and its action was taken; the windows still hold after."""
    closes: float | None = None
    """When the open window closes, as the running chunks were told (their publishes
    send nothing from then on); None: no windows."""


def now_state(rollout: Rollout, now: datetime, *, ended: bool) -> ScheduleState:
    """The schedule at ``now``; once ``ended`` (an operator resumed past the end time's
    pause), the end time no longer counts."""
    return schedule_state(
        now,
        [parse_window(w) for w in rollout.windows],
        _at(rollout.start_at),
        None if ended else _at(rollout.end_at),
    )


def window_closes(rollout: Rollout, now: datetime) -> float | None:
    """When the maintenance window open at ``now`` closes (seconds since the epoch);
    None without windows. Not the end time: that pauses (running chunks finish) or
    cancels (the publish checks the stop)."""
    if not rollout.windows:
        return None
    state = schedule_state(now, [parse_window(w) for w in rollout.windows])
    if not state.open or state.until is None:
        return None
    return state.until.timestamp()


def _at(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
