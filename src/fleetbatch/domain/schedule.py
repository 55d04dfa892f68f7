"""Schedules: when a batch may run. A start time, an end time, and recurring
maintenance windows, each a cron-like start with a duration in a time zone.

A window is written one of two ways::

    01:00-05:00 Europe/Berlin          every day, 01:00 to 05:00 local time
    sat,sun 22:00-06:00 UTC            weekend nights (the end on the next day)
    0 1 * * 1-5 4h Europe/Berlin       5-field cron (minute hour day month weekday),
                                       then a duration (90m, 4h, 1h30m, 2d), then a zone

The zone is optional (UTC). Durations are wall-clock: a window from 01:00 for 4 h
ends at 05:00 local time, also on the nights the clocks change (3 or 5 hours of
real time then). A start that falls in a spring-forward gap (02:30 in
Europe/Berlin on the last Sunday of March) starts when the clock jumps past it
(03:30 local, the same instant as 02:30 before the jump); a start the
fall-back repeats opens once, at its first occurrence. Overlapping windows merge.

Pure and deterministic: the batch workflow calls :func:`schedule_state` with
``workflow.now()``; zones come from ``zoneinfo`` (the system's or the ``tzdata``
package's database).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleetbatch.errors import ConfigError

END_ACTIONS = ("pause", "cancel")
MAX_WINDOW = timedelta(days=7)
"""Longest window: longer ones would be a schedule of their own."""
_SEARCH_DAYS = 366 * 8
"""How far ahead a next start is looked for (a 29 February on a Monday is rare)."""
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_SIMPLE = re.compile(
    r"(?:(?P<days>[a-z0-9,*-]+)\s+)?(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})"
)
_RANGE = re.compile(r"\d{1,2}:\d{2}-\d{1,2}:\d{2}")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))


@dataclass(frozen=True)
class Window:
    """A recurring maintenance window, parsed."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 (or 7) is Sunday, as in cron."""
    any_day: bool
    any_weekday: bool
    duration: timedelta
    zone: ZoneInfo

    def runs_on(self, day: date) -> bool:
        """Cron's rule: with both a day and a weekday restricted, either matches."""
        if day.month not in self.months:
            return False
        by_day, by_weekday = day.day in self.days, day.isoweekday() % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday


@dataclass(frozen=True)
class ScheduleState:
    """Whether a batch may run at a moment, and until when that holds."""

    open: bool
    """Inside a window (or no windows), after the start and before the end."""
    until: datetime | None
    """Open: when it closes (a window's end or the end time); closed: when it opens
    (a window's start or the start time; the end time if no window comes before it).
    None: it does not change (always open, or ended)."""
    ended: bool = False
    """The end time has passed."""


def parse_window(text: str) -> Window:
    """The window ``text`` describes (see the module's docstring).

    Raises:
        ConfigError: an unreadable window, an unknown zone or a window that never opens.
    """
    parts = text.strip().split()
    zone_name = "UTC"
    if len(parts) >= 2 and (_RANGE.fullmatch(parts[-2]) or _DURATION.fullmatch(parts[-2])):
        zone_name = parts.pop()
    zone = _zone(zone_name, text)
    spec = " ".join(parts).lower()
    if simple := _SIMPLE.fullmatch(spec):
        start, end = _clock(simple["start"], text), _clock(simple["end"], text)
        length = (end - start) % (24 * 60) or 24 * 60
        days = simple["days"] or "*"
        cron = [str(start % 60), str(start // 60), "*", "*", days]
        duration = timedelta(minutes=length)
    elif len(parts) == 6:
        cron, duration = parts[:5], _duration(parts[5], text)
    else:
        raise ConfigError(
            f"invalid window {text!r}: give '01:00-05:00 Europe/Berlin', "
            "'sat,sun 22:00-06:00 UTC' or a cron with a duration '0 1 * * 1-5 4h Europe/Berlin'"
        )
    fields = [
        _field(value, name, low, high, text)
        for value, (name, low, high) in zip(cron, _FIELDS, strict=True)
    ]
    weekdays = frozenset(d % 7 for d in fields[4][0])
    window = Window(
        minutes=tuple(sorted(fields[0][0])),
        hours=tuple(sorted(fields[1][0])),
        days=frozenset(fields[2][0]),
        months=frozenset(fields[3][0]),
        weekdays=weekdays,
        any_day=fields[2][1],
        any_weekday=fields[4][1],
        duration=duration,
        zone=zone,
    )
    if not any(window.runs_on(date(2028, 1, 1) + timedelta(days=n)) for n in range(366 * 4 + 7)):
        raise ConfigError(f"invalid window {text!r}: it never opens")
    return window


def check_windows(windows: Sequence[str]) -> list[str]:
    """``windows`` as given, each checked.

    Raises:
        ConfigError: one cannot be read.
    """
    for window in windows:
        parse_window(window)
    return [w.strip() for w in windows]


def schedule_state(
    now: datetime,
    windows: Sequence[Window] = (),
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> ScheduleState:
    """Whether a batch with this schedule may run at ``now`` (aware), and until when."""
    if end_at is not None and now >= end_at:
        return ScheduleState(open=False, until=None, ended=True)
    if start_at is not None and now < start_at:
        opens = start_at
        if windows:
            at_start = _window_state(start_at, windows)
            opens = start_at if at_start[0] else at_start[1]
        return ScheduleState(open=False, until=_earliest(opens, end_at))
    if not windows:
        return ScheduleState(open=True, until=end_at)
    inside, until = _window_state(now, windows)
    return ScheduleState(open=inside, until=_earliest(until, end_at))


def _window_state(now: datetime, windows: Sequence[Window]) -> tuple[bool, datetime]:
    """(inside, until): the merged windows' end if inside, else the next start."""
    spans = heapq.merge(*(_spans(w, now - w.duration - timedelta(days=2)) for w in windows))
    open_end: datetime | None = None
    for start, end in spans:
        if open_end is not None:
            # Windows that never leave a gap: look again once this much has passed.
            if start > open_end or open_end > now + 2 * MAX_WINDOW:
                return True, open_end
            open_end = max(open_end, end)
        elif start <= now < end:
            open_end = end
        elif start > now:
            return False, start
    raise AssertionError("windows are checked to open")  # pragma: no cover


def _spans(window: Window, after: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The window's (start, end) in UTC from the first start at or after ``after``, in
    order. A day's starts are sorted with the next day's in view: around a clock
    change, wall-clock order is not always the order of the instants."""
    day = after.astimezone(window.zone).date() - timedelta(days=1)
    pending: list[tuple[datetime, datetime]] = []
    for _ in range(_SEARCH_DAYS):
        if window.runs_on(day):
            for hour in window.hours:
                for minute in window.minutes:
                    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=window.zone)
                    start = local.astimezone(UTC)
                    # Wall-clock arithmetic (same tzinfo), from the start as the clock
                    # shows it: a start in a spring-forward gap counts from after the jump.
                    end = (start.astimezone(window.zone) + window.duration).astimezone(UTC)
                    if start >= after:
                        heapq.heappush(pending, (start, end))
        horizon = datetime(day.year, day.month, day.day, tzinfo=window.zone).astimezone(UTC)
        while pending and pending[0][0] < horizon:
            yield heapq.heappop(pending)
        day += timedelta(days=1)
    yield from sorted(pending)


def _earliest(when: datetime, end_at: datetime | None) -> datetime:
    return when if end_at is None else min(when, end_at)


def _zone(name: str, text: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"invalid window {text!r}: unknown time zone {name!r} (give an IANA name "
            "such as 'Europe/Berlin' or 'UTC')"
        ) from None


def _clock(value: str, text: str) -> int:
    hours, minutes = (int(p) for p in value.split(":"))
    if hours > 23 or minutes > 59:
        raise ConfigError(f"invalid window {text!r}: {value} is not a time of day")
    return hours * 60 + minutes


def _duration(value: str, text: str) -> timedelta:
    found = _DURATION.fullmatch(value.lower())
    if found is None or not value:
        raise ConfigError(f"invalid window {text!r}: {value!r} is not a duration (90m, 4h)")
    days, hours, minutes, seconds = (int(n or 0) for n in found.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if not timedelta(0) < duration <= MAX_WINDOW:
        raise ConfigError(f"invalid window {text!r}: a window lasts more than 0 and at most 7 days")
    return duration


def _field(value: str, name: str, low: int, high: int, text: str) -> tuple[set[int], bool]:
    """The values a cron field allows, and whether it is ``*`` (any)."""
    bad = ConfigError(f"invalid window {text!r}: bad {name} field {value!r}")
    found: set[int] = set()
    for part in value.split(","):
        step = 1
        if "/" in part:
            part, _, every = part.partition("/")
            if not every.isdigit() or int(every) < 1:
                raise bad
            step = int(every)
        if part == "*":
            first, last = low, high
        elif "-" in part:
            a, _, b = part.partition("-")
            first, last = _value(a, name, bad), _value(b, name, bad)
        else:
            first = _value(part, name, bad)
            last = high if step > 1 else first
        if not low <= first <= last <= high:
            raise bad
        found.update(range(first, last + 1, step))
    return found, value == "*"


def _value(text: str, name: str, bad: ConfigError) -> int:
    if name == "weekday" and text in _DAYS:
        return _DAYS[text]
    if not text.isdigit():
        raise bad
    return int(text)


def parse_time(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 time (``2026-12-24T01:00+01:00``, a ``Z``
    for UTC; without an offset, UTC).

    Raises:
        ConfigError: not such a time.
    """
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"invalid time {text!r}: give an ISO 8601 time such as '2026-12-24T01:00+01:00'"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
