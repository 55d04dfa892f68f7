"""Rates, failure tolerances and command types from settings."""

from __future__ import annotations

import pytest

from fleetbatch.config import Settings
from fleetbatch.domain import check_tolerance, format_rate, parse_rate, tolerance_exceeded
from fleetbatch.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("10/s", 10.0), ("600/min", 10.0), (" 90 / minute ", 1.5), ("2.5", 2.5), (20, 20.0)],
)
def test_parse_rate(text: str | float, per_second: float) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize("text", ["off", "none", "Unlimited", None])
def test_parse_rate_off(text: str | None) -> None:
    assert parse_rate(text) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fast", "invalid rate 'fast': write items per second or minute"),
        ("10/h", "invalid rate '10/h': write items per second or minute"),
        ("0/s", "invalid rate '0/s': a rate must be above zero (or 'off')"),
    ],
)
def test_parse_rate_refuses(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_rate(text)
    assert str(err.value).startswith(message)


def test_format_rate() -> None:
    assert [format_rate(r) for r in (None, 10.0, 0.5, 2.5, 50.0)] == [
        "off",
        "10/s",
        "30/min",
        "150/min",
        "50/s",
    ]


def test_tolerance() -> None:
    assert [check_tolerance(t) for t in ("5%", " 12.5% ", "100")] == ["5%", "12.5%", "100"]
    for bad in ("5.5", "abc", "101%", "-3"):
        with pytest.raises(ConfigError):
            check_tolerance(bad)
    assert tolerance_exceeded("10%", 10, 100) is None
    assert tolerance_exceeded("10%", 11, 100) == "11 items failed, more than the tolerated 10%"
    assert tolerance_exceeded("3", 4, 1000) == "4 items failed, more than the tolerated 3"
    assert tolerance_exceeded(None, 10**6, 10) is None


def test_command_types_from_settings() -> None:
    s = Settings(
        commands={
            "lock_doors": {"rate": "20/s", "max_attempts": 5},
            "open_trunk": {"domain": "vehicle", "rate": "off"},
        }
    )
    types = s.command_types
    assert (types["lock_doors"].rate_per_second, types["lock_doors"].max_attempts) == (20.0, 5)
    assert (types["open_trunk"].publishes_in_chunk, types["lock_doors"].publishes_in_chunk) == (
        True,
        False,
    )
    assert (types["open_trunk"].domain, types["open_trunk"].rate_per_second) == ("vehicle", None)
    assert types["unlock_doors"].rate_per_second == 10.0  # the original design's 600/min


def test_publish_slice_is_no_setting_any_more() -> None:
    """A rate is in items per second for every chunk size: one item per publish."""
    with pytest.raises(ValueError, match="publish_slice"):
        Settings(commands={"lock_doors": {"publish_slice": 10}})


def test_new_command_type_needs_a_domain() -> None:
    with pytest.raises(ConfigError, match="command 'open_trunk' is new: give its domain"):
        Settings(commands={"open_trunk": {"rate": "1/s"}})
