"""Window arithmetic: cron and daily windows, zones, DST, start and end times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetbatch.domain.policies import BUILT_IN_POLICIES, get_policy
from fleetbatch.domain.rollout import rollout_from_options
from fleetbatch.domain.schedule import ScheduleState, parse_window, schedule_state
from fleetbatch.errors import ConfigError, UnknownPolicyError


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def state(now: str, *windows: str, **times: str) -> ScheduleState:
    parsed = [parse_window(w) for w in windows]
    bounds = {name: utc(value) for name, value in times.items()}
    return schedule_state(utc(now), parsed, bounds.get("start_at"), bounds.get("end_at"))


BERLIN_NIGHT = "01:00-05:00 Europe/Berlin"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Winter (CET, UTC+1): 00:00-04:00 UTC.
        ("2026-01-15T23:59", ScheduleState(False, utc("2026-01-16T00:00"))),
        ("2026-01-16T00:00", ScheduleState(True, utc("2026-01-16T04:00"))),
        ("2026-01-16T04:00", ScheduleState(False, utc("2026-01-17T00:00"))),
        # Summer (CEST, UTC+2): 23:00-03:00 UTC.
        ("2026-07-01T12:00", ScheduleState(False, utc("2026-07-01T23:00"))),
        ("2026-07-02T02:59", ScheduleState(True, utc("2026-07-02T03:00"))),
        # Spring forward (29 March 2026, 02:00 -> 03:00): 01:00 CET to 05:00 CEST is
        # three hours of real time, the window still ends at 05:00 on the wall clock.
        ("2026-03-28T23:30", ScheduleState(False, utc("2026-03-29T00:00"))),
        ("2026-03-29T02:00", ScheduleState(True, utc("2026-03-29T03:00"))),
        ("2026-03-29T03:00", ScheduleState(False, utc("2026-03-29T23:00"))),
        # Fall back (25 October 2026, 03:00 -> 02:00): 01:00 CEST to 05:00 CET, five hours.
        ("2026-10-24T22:59", ScheduleState(False, utc("2026-10-24T23:00"))),
        ("2026-10-25T03:59", ScheduleState(True, utc("2026-10-25T04:00"))),
        ("2026-10-25T04:00", ScheduleState(False, utc("2026-10-26T00:00"))),
    ],
)
def test_a_nightly_window_in_berlin_across_the_year(now: str, expected: ScheduleState) -> None:
    assert state(now, BERLIN_NIGHT) == expected


def test_a_start_in_the_spring_forward_gap_opens_when_the_clock_jumps() -> None:
    # 02:30 does not exist on 29 March 2026 in Berlin: the window opens at 03:30 CEST
    # (01:30 UTC), an hour of wall clock later ends 04:30 CEST.
    window = "30 2 * * * 1h Europe/Berlin"
    assert state("2026-03-29T00:00", window) == ScheduleState(False, utc("2026-03-29T01:30"))
    assert state("2026-03-29T01:30", window) == ScheduleState(True, utc("2026-03-29T02:30"))


def test_a_start_the_fall_back_repeats_opens_once() -> None:
    # 02:30 happens twice on 25 October 2026: first at 00:30 UTC (CEST). The window
    # ends at 03:30 CET (02:30 UTC), and the next opens the next night.
    window = "30 2 * * * 1h Europe/Berlin"
    assert state("2026-10-25T00:00", window) == ScheduleState(False, utc("2026-10-25T00:30"))
    assert state("2026-10-25T01:45", window) == ScheduleState(True, utc("2026-10-25T02:30"))
    assert state("2026-10-25T02:30", window) == ScheduleState(False, utc("2026-10-26T01:30"))


def test_weekday_windows_across_midnight() -> None:
    # 1 January 2026 is a Thursday: the next window is Saturday night.
    window = "sat,sun 22:00-06:00 UTC"
    assert state("2026-01-01T12:00", window) == ScheduleState(False, utc("2026-01-03T22:00"))
    assert state("2026-01-04T05:00", window) == ScheduleState(True, utc("2026-01-04T06:00"))
    # Sunday night's window runs into Monday morning.
    assert state("2026-01-05T05:59", window) == ScheduleState(True, utc("2026-01-05T06:00"))
    assert state("2026-01-05T06:00", window) == ScheduleState(False, utc("2026-01-10T22:00"))


def test_a_cron_with_ranges_steps_and_both_day_fields() -> None:
    workdays = "0 9-17/4 * * 1-5 30m UTC"  # 09:00, 13:00, 17:00 on weekdays
    assert state("2026-01-02T10:00", workdays) == ScheduleState(False, utc("2026-01-02T13:00"))
    assert state("2026-01-02T17:10", workdays) == ScheduleState(True, utc("2026-01-02T17:30"))
    assert state("2026-01-02T17:30", workdays) == ScheduleState(False, utc("2026-01-05T09:00"))
    # Cron's rule: a day of the month or a weekday (the 1st, or any Sunday).
    either = "0 0 1 * sun 1h UTC"
    assert state("2026-01-01T12:00", either) == ScheduleState(False, utc("2026-01-04T00:00"))
    leap = "0 0 29 2 * 1h UTC"
    assert state("2026-03-01T00:00", leap) == ScheduleState(False, utc("2028-02-29T00:00"))


def test_overlapping_windows_merge() -> None:
    hourly = "0 * * * * 90m UTC"
    # Every hour for 90 minutes never closes: open, and looked at again later.
    found = state("2026-01-01T00:10", hourly)
    assert found.open and found.until is not None and found.until > utc("2026-01-14T00:00")
    two = state("2026-01-01T01:30", "01:00-03:00 UTC", "02:00-04:00 UTC")
    assert two == ScheduleState(True, utc("2026-01-01T04:00"))


def test_start_and_end_times_bound_the_windows() -> None:
    assert state("2026-01-01T00:00", start_at="2026-01-01T06:00") == ScheduleState(
        False, utc("2026-01-01T06:00")
    )
    # Started during a window: open at the start time.
    assert state(
        "2026-01-01T00:00", "05:00-07:00 UTC", start_at="2026-01-01T06:00"
    ) == ScheduleState(False, utc("2026-01-01T06:00"))
    # Started between windows: the next window opens the batch.
    assert state(
        "2026-01-01T00:00", "05:00-07:00 UTC", start_at="2026-01-01T08:00"
    ) == ScheduleState(False, utc("2026-01-02T05:00"))
    # The end time cuts a window short, and ends the schedule.
    assert state("2026-01-01T05:30", "05:00-07:00 UTC", end_at="2026-01-01T06:00") == ScheduleState(
        True, utc("2026-01-01T06:00")
    )
    assert state("2026-01-01T06:00", end_at="2026-01-01T06:00") == ScheduleState(
        False, None, ended=True
    )
    assert state("2026-01-01T06:00") == ScheduleState(True, None)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("25:00-01:00", "invalid window '25:00-01:00': 25:00 is not a time of day"),
        (
            "01:00-05:00 Mars/Olympus",
            "invalid window '01:00-05:00 Mars/Olympus': unknown time zone 'Mars/Olympus' "
            "(give an IANA name such as 'Europe/Berlin' or 'UTC')",
        ),
        ("0 0 30 2 * 1h", "invalid window '0 0 30 2 * 1h': it never opens"),
        (
            "0 1 * * * 8d",
            "invalid window '0 1 * * * 8d': a window lasts more than 0 and at most 7 days",
        ),
        ("0 1 * * * soon", "invalid window '0 1 * * * soon': 'soon' is not a duration (90m, 4h)"),
        ("0 61 * * * 1h", "invalid window '0 61 * * * 1h': bad hour field '61'"),
        ("0 1 * * fun 1h", "invalid window '0 1 * * fun 1h': bad weekday field 'fun'"),
        (
            "nightly",
            "invalid window 'nightly': give '01:00-05:00 Europe/Berlin', "
            "'sat,sun 22:00-06:00 UTC' or a cron with a duration '0 1 * * 1-5 4h Europe/Berlin'",
        ),
    ],
)
def test_unreadable_windows_are_refused(window: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_window(window)
    assert str(refused.value) == message


def test_submit_options_override_a_policy() -> None:
    cautious = get_policy("cautious-ota")
    rollout = rollout_from_options(None, gate_failures="1%", policy=cautious)
    assert rollout is not None
    assert (rollout.waves, rollout.gate_failures, rollout.gate_min_items) == (
        ["1%", "10%", "all"],
        "1%",
        10,
    )
    assert rollout.policy == "cautious-ota"
    scheduled = rollout_from_options(None, windows=[BERLIN_NIGHT], end_at=2e9, on_end="cancel")
    assert scheduled is not None and not scheduled.staged and scheduled.scheduled
    assert rollout_from_options(None) is None
    with pytest.raises(ConfigError, match="the end time must come after the start time"):
        rollout_from_options(None, start_at=2e9, end_at=1e9)
    with pytest.raises(ConfigError, match="invalid end action 'stop'"):
        rollout_from_options(None, end_at=2e9, on_end="stop")


def test_an_unknown_policy_names_the_closest() -> None:
    with pytest.raises(UnknownPolicyError) as unknown:
        get_policy("cautious_ota")
    known = ", ".join(sorted(BUILT_IN_POLICIES))
    assert str(unknown.value) == (
        "unknown rollout policy 'cautious_ota'; did you mean 'cautious-ota'? "
        f"(known policies: {known})"
    )
    with pytest.raises(UnknownPolicyError) as far:
        get_policy("zzz")
    assert str(far.value) == f"unknown rollout policy 'zzz' (known policies: {known})"
    assert timedelta(0) < parse_window(BERLIN_NIGHT).duration
