"""The pure rules of rate ramps and of abort rules that bound the overshoot."""

from __future__ import annotations

import pytest

from fleetbatch.domain.overshoot import gate_budget, in_flight_allowance, tolerance_budget
from fleetbatch.domain.ramp import (
    RateRamp,
    chunk_limit,
    chunks_to_page,
    format_ramp,
    parse_ramp,
    ramp_rate,
)
from fleetbatch.domain.rollout import Rollout, gate_failure, rollout_from_options
from fleetbatch.domain.tolerance import tolerance_exceeded
from fleetbatch.errors import ConfigError


def test_a_ramp_reads_as_aws_iot_jobs_writes_it() -> None:
    ramp = parse_ramp("base=60/min, factor=2, after=100, max=600/min")
    assert ramp == RateRamp(base=1.0, factor=2.0, after=100, counts="notified", max=10.0)
    assert parse_ramp("base=5/s,succeeded=50").counts == "succeeded"
    assert parse_ramp("base=5/s,notified=50") == RateRamp(5.0, 2.0, 50, "notified", None)
    assert format_ramp(ramp) == "base=60/min,factor=2,after=100,max=600/min"
    assert parse_ramp(format_ramp(ramp)) == ramp


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "factor=2",
            "invalid ramp 'factor=2': it needs a base rate; write it like "
            "'base=60/min,factor=2,after=100,max=600/min'",
        ),
        (
            "base=1/s,speed=2",
            "invalid ramp 'base=1/s,speed=2': write it like "
            "'base=60/min,factor=2,after=100,max=600/min'",
        ),
        (
            "base=1/s,after=5,succeeded=5",
            "invalid ramp 'base=1/s,after=5,succeeded=5': "
            "give one of after=N (notified), notified=N or succeeded=N",
        ),
        (
            "base=off",
            "invalid ramp 'base=off': give its rates per second or minute "
            "('5/s', '300/min'), not 'off'",
        ),
        (
            "base=fast",
            "invalid ramp 'base=fast': give its rates per second or minute "
            "('5/s', '300/min'), not 'fast'",
        ),
        (
            "base=1/s,factor=0.5",
            "invalid ramp 'base=1/s,factor=0.5': the base must be above "
            "zero, the factor at least 1 and a step at least 1 item",
        ),
        (
            "base=10/s,max=5/s",
            "invalid ramp 'base=10/s,max=5/s': the maximum is below the base rate",
        ),
        (
            "base=1/s,after=x",
            "invalid ramp 'base=1/s,after=x': write it like "
            "'base=60/min,factor=2,after=100,max=600/min'",
        ),
    ],
)
def test_a_bad_ramp_says_why(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_ramp(text)
    assert str(raised.value) == message


def test_the_rate_steps_up_by_counts_to_its_maximum() -> None:
    ramp = parse_ramp("base=60/min,factor=2,after=100,max=600/min")
    rates = [ramp_rate(ramp, n) for n in (0, 99, 100, 199, 200, 300, 400, 10**12)]
    assert rates == [1.0, 1.0, 2.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    uncapped = parse_ramp("base=1/s,factor=3,after=1")
    assert ramp_rate(uncapped, 2) == 9.0
    assert ramp_rate(uncapped, 10**12) == 1_000_000.0  # no overflow past any real rate
    assert ramp_rate(parse_ramp("base=2/s,factor=1,after=1"), 10**6) == 2.0


def test_a_chunk_under_a_ramp_holds_half_a_second_of_its_rate() -> None:
    ramp = parse_ramp("base=5/s,factor=2,after=50,max=20/s")
    assert [chunk_limit(ramp, n, 100) for n in (0, 50, 100)] == [3, 5, 10]
    assert chunk_limit(parse_ramp("base=1/min"), 0, 100) == 1
    assert chunk_limit(ramp, 100, 4) == 4
    # Paged: what the batch may start while it catches up (2 s of the rate).
    assert [chunks_to_page(ramp, 0, 3), chunks_to_page(ramp, 100, 10)] == [4, 4]


def test_the_tolerance_budget_is_what_the_rule_lets_fail_before_it_trips() -> None:
    assert tolerance_budget(None, 0, 100) is None
    assert tolerance_budget("20", 5, 1000) == 15
    assert tolerance_budget("2%", 10, 1200) == 14
    assert tolerance_budget("2%", 30, 1200) == 0
    # The budget's last failure still holds; one more trips the rule.
    for rule, total in (("2%", 1200), ("2.5%", 333), ("7", 50)):
        budget = tolerance_budget(rule, 3, total)
        assert budget is not None
        assert tolerance_exceeded(rule, 3 + budget, total) is None
        assert tolerance_exceeded(rule, 4 + budget, total) is not None


@pytest.mark.parametrize(
    ("gate", "min_items", "failed", "executed"),
    [
        ("5%", 20, 0, 0),
        ("5%", 20, 1, 40),
        ("10%", 0, 3, 100),
        ("30", 0, 10, 500),
        ("5%", 20, 10, 30),
        ("33.3%", 5, 2, 9),
    ],
)
def test_the_gate_budget_is_what_the_gate_lets_fail_before_it_trips(
    gate: str, min_items: int, failed: int, executed: int
) -> None:
    rollout = Rollout(waves=["all"], gate_failures=gate, gate_min_items=min_items)
    budget = gate_budget(gate, min_items, failed, executed)
    assert budget is not None
    if gate_failure(rollout, "wave 1 of 1", failed, executed) is None:
        assert gate_failure(rollout, "w", failed + budget, executed + budget) is None
    assert gate_failure(rollout, "w", failed + budget + 1, executed + budget + 1) is not None


def test_the_allowance_is_the_strictest_budget_plus_the_bound() -> None:
    assert gate_budget(None, 0, 0, 0) is None
    assert gate_budget("100%", 0, 0, 0) is None
    assert in_flight_allowance([None, None], 10) is None
    assert in_flight_allowance([24, None, 5], 10) == 15


def test_ramps_and_bounds_come_from_submit_options() -> None:
    rollout = rollout_from_options(None, ramp="base=60/min,after=10")
    assert rollout is not None and not rollout.staged
    assert rollout.ramp == RateRamp(1.0, 2.0, 10)
    bound = rollout_from_options(None, overshoot=10, max_failures="2%")
    assert bound is not None and bound.overshoot == 10
    with pytest.raises(ConfigError) as raised:
        rollout_from_options(None, overshoot=10)
    assert str(raised.value) == (
        "an overshoot bound needs a rule to abort on: give --max-failures or a gate"
    )
    with pytest.raises(ConfigError, match="invalid overshoot 0: at least 1 item"):
        rollout_from_options("10%,all", gate_failures="5%", overshoot=0)
    # Stored as JSON and read back: the ramp is a RateRamp again.
    assert Rollout(**{"ramp": {"base": 1.0}}).ramp == RateRamp(1.0)
