"""The chaos run's measurements and schedule (bench/fleetbatch_bench/chaos*.py), on
made-up deliveries: recovery times, deliveries after a cancel, the seeded plan."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fleetbatch_bench.chaos import PROCESSES, QUICK_PLAN, make_plan
from fleetbatch_bench.chaos_checks import (
    Delivery,
    DeliveryLog,
    after_cancel,
    parse_deliveries,
    recovered_by,
    recovery,
)


def steady(start: float, end: float, per_second: int) -> list[float]:
    """Deliveries spread evenly, ``per_second`` in each second of [start, end)."""
    out: list[float] = []
    second = start
    while second < end:
        out += [second + (i + 0.5) / per_second for i in range(per_second)]
        second += 1
    return out


def test_recovery_counts_from_the_faults_end_until_the_rate_is_back_and_stays() -> None:
    # 50/s until 100; nothing until 110 (the fault ends at 105); 30/s (60 %) for 3 s;
    # then 45/s (90 %).
    times = sorted(steady(0, 100, 50) + steady(110, 113, 30) + steady(113, 200, 45))
    r = recovery(times, start=100, end=105, window=5, hold=5, until=200)
    assert r.before == 50
    # 5 s averages from 105 + k: k = 7 is the first to reach 40/s ((30 + 4 * 45) / 5 = 42),
    # and those from 8 to 12 do too.
    assert r.seconds == 7
    assert r.during == 0
    assert r.lowest == 0


def test_a_burst_then_a_sag_is_not_a_recovery() -> None:
    # A backlog redelivered at once, then a sag at half the rate, then back.
    times = sorted(steady(0, 100, 20) + [101.5] * 200 + steady(102, 130, 10) + steady(130, 300, 20))
    r = recovery(times, start=100, end=101, window=10, hold=10, until=300)
    # The burst lifts the averages that hold it, but they do not stay up: only the
    # 10 s averages from 126 (101 + 25) on reach 16/s, each of them.
    assert r.seconds == 25


def test_a_fault_the_rate_never_noticed_recovers_in_zero_seconds() -> None:
    times = steady(0, 200, 20)
    r = recovery(times, start=100, end=102, window=10, hold=10, until=200)
    assert (r.before, r.seconds, r.lowest) == (20, 0, 20)


def test_no_recovery_within_the_horizon() -> None:
    times = sorted(steady(0, 100, 20) + steady(100, 200, 10))
    assert recovery(times, start=100, end=101, window=10, hold=10, until=200).seconds is None


def test_recovered_by_waits_until_the_rate_stayed_back() -> None:
    times = sorted(steady(0, 100, 20) + steady(104, 200, 18))
    # Back from 104, 3 s after the end: the 5 s averages from 104 to 109 must be in,
    # that is every delivery until 114.
    assert recovered_by(times, 100, 101, now=113.5, window=5, hold=5) is None
    assert recovered_by(times, 100, 101, now=114, window=5, hold=5) == 3


def test_deliveries_after_a_cancel() -> None:
    stop = 1000.0
    deliveries = [
        Delivery(990.0, "b1", "c1"),
        Delivery(999.0, "b1", "c2"),
        Delivery(1001.5, "b1", "c3"),  # within the slack: in transit when it stopped
        Delivery(1010.0, "b1", "c2"),  # a redelivery of a command sent before
        Delivery(1020.0, "b1", "c4"),  # new after the stop: published after it
        Delivery(1030.0, "b2", "c5"),  # another batch
    ]
    stream = [(989.9, "c1"), (998.9, "c2"), (1000.5, "c3"), (1019.9, "c4")]
    found = after_cancel(deliveries, "b1", stop, stream)
    assert found.new_after == ["c4"]
    assert found.repeats_after == 1
    assert found.delivered_after == 2
    assert found.last_delivery_delay == 20.0
    assert found.published_after == ["c4"]
    assert found.last_publish_delay is not None and round(found.last_publish_delay, 1) == 19.9
    assert not found.ok
    clean = after_cancel(deliveries[:3], "b1", stop, stream[:3])
    assert clean.ok and clean.last_delivery_delay == 1.5


def test_the_delivery_log_is_read_as_it_grows_and_cut_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.csv"
    log = DeliveryLog(path)
    assert log.read() == 0  # no file yet
    path.write_text("10.5,b1,c1\n11.0,b1,c")
    assert log.read() == 1
    with path.open("a") as f:
        f.write("2\n9.0,b1,c0\n")
    assert log.read() == 2
    assert log.times == [9.0, 10.5, 11.0]
    assert [d.command_id for d in log.deliveries] == ["c1", "c2", "c0"]
    # A line a SIGKILL cut short runs into the next process's first line.
    assert parse_deliveries(["12.0,b1,c9", "13.0,b1,c10", "x,y,z", "1.0,,c", ""]) == [
        Delivery(12.0, "b1", "c9"),
        Delivery(13.0, "b1", "c10"),
    ]
    assert len(parse_deliveries(["12.1,b1,c13.0,b1,c10"])) == 0


def test_the_plan_is_seeded_and_has_every_kind_of_fault() -> None:
    plan = make_plan(15, 7)
    assert plan == make_plan(15, 7)
    assert plan != make_plan(15, 8)
    kinds = Counter(f.kind for f in plan.faults)
    assert len(plan.faults) == 15
    assert {k: kinds[k] for k in ("postgres", "nats", "temporal", "kill-all")} == {
        "postgres": 2,
        "nats": 2,
        "temporal": 2,
        "kill-all": 2,
    }
    assert kinds["kill"] == 7
    for fault in plan.faults:
        assert set(fault.targets) <= set(PROCESSES)
        assert fault.down == 30.0 if fault.kind == "postgres" else 1 <= fault.down <= 5
    actions = [op.action for op in plan.ops]
    assert sorted(actions) == ["cancel", "cancel", "pause", "redrive", "resume"]
    first_kill_all = next(i for i, f in enumerate(plan.faults) if f.kind == "kill-all")
    pause = next(op for op in plan.ops if op.action == "pause")
    resume = next(op for op in plan.ops if op.action == "resume")
    # Paused, then everything is killed, then resumed.
    assert (pause.before, resume.before) == (first_kill_all, first_kill_all + 1)
    assert all(0 <= op.before <= len(plan.faults) for op in plan.ops)


def test_the_quick_plan() -> None:
    labels = [f.label for f in QUICK_PLAN.faults]
    assert labels == [
        "SIGKILL worker-a",
        "SIGKILL responder",
        "NATS restarted",
        "SIGKILL Temporal server",
    ]
    assert make_plan(4, 1).faults  # short plans are possible too
