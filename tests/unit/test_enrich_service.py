"""The enrichment client against the real simulator (HTTP on 127.0.0.1, a free port)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetbatch.pipelines.enrich.client import (
    EnrichmentCache,
    EnrichmentClient,
    EnrichResult,
    RetryPolicy,
    UserRecord,
)
from fleetbatch.pipelines.enrich.service import (
    SEGMENTS,
    EnrichmentSimulator,
    EnrichmentSimulatorConfig,
    region_for,
    run_forever,
    segment_and_score,
)

# No latency and no failures: each test adds the misbehaviour it is about.
QUIET = EnrichmentSimulatorConfig(latency_ms=0, latency_jitter_ms=0, failure_rate=0.0)
FAILING = replace(QUIET, failure_rate=1.0)
ALICE = UserRecord(user_id="u-alice", email="alice@example.com", country="DE")


class RecordingSleep:
    """Records the client's waits instead of waiting: retries take no time in tests."""

    def __init__(self, on_sleep: Callable[[], None] | None = None) -> None:
        self.delays: list[float] = []
        self._on_sleep = on_sleep

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._on_sleep is not None:
            self._on_sleep()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def running(
    config: EnrichmentSimulatorConfig = QUIET,
    *,
    timeout_seconds: float = 2.0,
    policy: RetryPolicy | None = None,
    cache: EnrichmentCache | None = None,
    sleep: RecordingSleep | None = None,
) -> AsyncIterator[tuple[EnrichmentSimulator, EnrichmentClient, RecordingSleep]]:
    sleep = sleep or RecordingSleep()
    async with (
        EnrichmentSimulator(config, host="127.0.0.1", port=0) as sim,
        EnrichmentClient(
            sim.url,
            timeout_seconds=timeout_seconds,
            policy=policy or RetryPolicy(),
            cache=cache,
            sleep=sleep,
        ) as client,
    ):
        yield sim, client, sleep


def fallback(user: UserRecord, reason: str, attempts: int) -> EnrichResult:
    data: dict[str, Any] = {
        "user_id": user.user_id,
        "enriched": False,
        "region": "UNKNOWN",
        "reason": reason,
    }
    return EnrichResult(user.user_id, "fallback", data, attempts, reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The simulator's answers


def test_region_from_country() -> None:
    expected = {"de": "EU", "GB": "EU", "US": "NA", "BR": "LATAM", "MX": "LATAM", "JP": "APAC"}
    expected |= {"ZA": "MEA", "AE": "MEA", "AQ": "OTHER", "": "OTHER", " fr ": "EU"}
    assert {country: region_for(country) for country in expected} == expected


def test_segment_and_score_are_stable_and_in_range() -> None:
    answers = [segment_and_score(f"user-{i}") for i in range(300)]
    assert answers == [segment_and_score(f"user-{i}") for i in range(300)]
    assert {segment for segment, _ in answers} == set(SEGMENTS)
    assert all(0 <= score <= 100 for _, score in answers)
    assert len({score for _, score in answers}) > 50


def test_config_rejects_impossible_rates() -> None:
    with pytest.raises(ValueError, match="add up to more than 1"):
        EnrichmentSimulatorConfig(failure_rate=0.6, rate_limit_rate=0.5)
    with pytest.raises(ValueError, match="failure_rate"):
        EnrichmentSimulatorConfig(failure_rate=1.5)
    with pytest.raises(ValueError, match="timeout_seconds"):
        EnrichmentSimulatorConfig(timeout_seconds=-1)


async def test_success_shape() -> None:
    async with running() as (sim, client, sleep):
        result = await client.enrich(ALICE)
    segment, score = segment_and_score(ALICE.user_id)
    assert result == EnrichResult(
        user_id=ALICE.user_id,
        source="service",
        data={
            "user_id": ALICE.user_id,
            "region": "EU",
            "segment": segment,
            "score": score,
            "enriched": True,
        },
        attempts=1,
        reason=None,
    )
    assert sim.calls == Counter({ALICE.user_id: 1})
    assert sim.outcomes == Counter({"ok": 1})
    assert sleep.delays == []


async def test_missing_fields_answer_422() -> None:
    async with EnrichmentSimulator(QUIET) as sim, httpx.AsyncClient(base_url=sim.url) as http:
        response = await http.post("/enrich", json={"user_id": "u-1"})
        not_json = await http.post("/enrich", content=b"{", headers={"content-type": "x"})
    assert response.status_code == 422
    missing = {tuple(error["loc"]) for error in response.json() if error["type"] == "missing"}
    assert missing == {("email",), ("country",)}
    assert not_json.status_code == 422
    assert sim.calls == Counter({"u-1": 1})
    assert sim.outcomes == Counter({"invalid": 2})


async def test_same_seed_same_outcomes() -> None:
    config = replace(QUIET, failure_rate=0.5, seed=42)

    async def statuses() -> list[int]:
        async with EnrichmentSimulator(config) as sim, httpx.AsyncClient(base_url=sim.url) as http:
            body = {"user_id": "u", "email": "u@example.com", "country": "FR"}
            return [(await http.post("/enrich", json=body)).status_code for _ in range(20)]

    first = await statuses()
    assert first == await statuses()
    assert set(first) == {200, 503}


async def test_stats_healthz_and_log_file(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "calls.ndjson"
    bob = UserRecord("u-bob", "bob@example.com", "US")
    async with EnrichmentSimulator(QUIET, log_file=log) as sim:
        async with EnrichmentClient(sim.url, sleep=RecordingSleep()) as client:
            await client.enrich(ALICE)
            sim.config = FAILING
            await client.enrich(bob)
        async with httpx.AsyncClient(base_url=sim.url) as http:
            stats = (await http.get("/stats")).json()
            health = (await http.get("/healthz")).json()
        # Read while it still runs: every line is flushed as it is written.
        lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert stats == {
        "total": 4,
        "calls": {ALICE.user_id: 1, bob.user_id: 3},
        "outcomes": {"ok": 1, "failure": 3},
    }
    assert health == {"ok": True}
    assert [(line["user_id"], line["status"]) for line in lines] == [
        (ALICE.user_id, 200),
        (bob.user_id, 503),
        (bob.user_id, 503),
        (bob.user_id, 503),
    ]
    assert all(abs(line["t"] - time.time()) < 60 for line in lines)


async def test_url_only_while_running() -> None:
    sim = EnrichmentSimulator(QUIET)
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.url
    await sim.start()
    url = sim.url
    await sim.stop()
    await sim.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.url
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/healthz")


async def test_run_forever_serves_until_cancelled() -> None:
    port = free_port()
    task = asyncio.create_task(run_forever(QUIET, "127.0.0.1", port, None))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(200):
            with contextlib.suppress(httpx.ConnectError):
                health = await http.get("/healthz")
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("run_forever never answered")
    assert health.json() == {"ok": True}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# Retries, backoff and fallbacks


async def test_failures_end_in_a_fallback_after_three_attempts() -> None:
    async with running(FAILING) as (sim, client, sleep):
        result = await client.enrich(ALICE)
    assert result == fallback(ALICE, "enrichment service answered 503 after 3 attempts", 3)
    assert sim.calls == Counter({ALICE.user_id: 3})
    assert sleep.delays == [1.0, 2.0]


async def test_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=5, initial_seconds=10, backoff=2, max_seconds=30)
    async with running(FAILING, policy=policy) as (sim, client, sleep):
        result = await client.enrich(ALICE)
    assert result.attempts == 5
    assert sim.calls[ALICE.user_id] == 5
    assert sleep.delays == [10, 20, 30, 30]


async def test_a_retry_that_succeeds() -> None:
    async with EnrichmentSimulator(FAILING) as sim:

        def recover() -> None:
            # The service comes back while the client waits for its second attempt.
            sim.config = QUIET

        sleep = RecordingSleep(on_sleep=recover)
        async with EnrichmentClient(sim.url, sleep=sleep) as client:
            result = await client.enrich(ALICE)
    assert (result.source, result.attempts, result.reason) == ("service", 2, None)
    assert result.data["enriched"] is True
    assert sim.outcomes == Counter({"failure": 1, "ok": 1})
    assert sleep.delays == [1.0]


async def test_rate_limit_honours_retry_after() -> None:
    async with running(replace(QUIET, rate_limit_rate=1.0, retry_after_seconds=7)) as (
        sim,
        client,
        sleep,
    ):
        async with httpx.AsyncClient(base_url=sim.url) as http:
            body = {"user_id": "u-probe", "email": "p@example.com", "country": "FR"}
            probe = await http.post("/enrich", json=body)
        result = await client.enrich(ALICE)
    assert (probe.status_code, probe.headers["Retry-After"]) == (429, "7")
    assert result == fallback(ALICE, "rate limited (429) after 3 attempts", 3)
    assert sleep.delays == [7.0, 7.0]
    assert sim.calls[ALICE.user_id] == 3
    assert sim.outcomes["rate_limited"] == 4


async def test_retry_after_is_capped_by_the_policy() -> None:
    config = replace(QUIET, rate_limit_rate=1.0, retry_after_seconds=120)
    async with running(config) as (_, client, sleep):
        await client.enrich(ALICE)
    assert sleep.delays == [30.0, 30.0]


async def test_timeouts_end_in_a_fallback() -> None:
    config = replace(QUIET, timeout_rate=1.0, timeout_seconds=1.0)
    async with running(config, timeout_seconds=0.2) as (sim, client, sleep):
        started = time.monotonic()
        result = await client.enrich(ALICE)
        elapsed = time.monotonic() - started
        # The last attempt's handler still waits out its 1 s: stopping wakes it at once
        # rather than waiting for it (uvicorn lets requests in flight finish).
        stopping = time.monotonic()
        await sim.stop()
        stop_seconds = time.monotonic() - stopping
    assert result == fallback(ALICE, "enrichment service timed out after 3 attempts (0.2s each)", 3)
    # Three attempts of 0.2 s: the client gave up each time, long before the 1 s answers.
    # On a loaded machine an attempt may give up before its request reached the
    # service; every one that did was answered too late.
    reached = sim.calls[ALICE.user_id]
    assert 1 <= reached <= 3 and sim.calls == Counter({ALICE.user_id: reached})
    assert sim.outcomes == Counter({"timeout": reached})
    assert sleep.delays == [1.0, 2.0]
    assert 0.5 < elapsed < 2.0
    assert stop_seconds < 0.6


async def test_a_slow_answer_within_the_timeout_is_a_success() -> None:
    config = replace(QUIET, timeout_rate=1.0, timeout_seconds=0.1)
    async with running(config, timeout_seconds=2.0) as (sim, client, _):
        result = await client.enrich(ALICE)
    assert (result.source, result.attempts) == ("service", 1)
    assert sim.outcomes == Counter({"timeout": 1})


async def test_a_422_is_not_retried() -> None:
    unusable = UserRecord(user_id="u-no-email", email="", country="DE")
    async with running() as (sim, client, sleep):
        result = await client.enrich(unusable)
    assert result == fallback(unusable, "enrichment service answered 422, not retried", 1)
    assert sim.calls == Counter({unusable.user_id: 1})
    assert sim.outcomes == Counter({"invalid": 1})
    assert sleep.delays == []


async def test_unreachable_service_ends_in_a_fallback() -> None:
    sleep = RecordingSleep()
    async with EnrichmentClient(f"http://127.0.0.1:{free_port()}", sleep=sleep) as client:
        result = await client.enrich(ALICE)
    assert result.source == "fallback"
    assert result.attempts == 3
    assert result.reason is not None
    assert result.reason.startswith("enrichment service unreachable after 3 attempts (ConnectE")
    assert sleep.delays == [1.0, 2.0]


# The cache


async def test_a_cache_hit_makes_no_call() -> None:
    cache = EnrichmentCache(ttl_seconds=300)
    async with running(cache=cache) as (sim, client, _):
        first = await client.enrich(ALICE)
        second = await client.enrich(ALICE)
    assert first.source == "service"
    assert second == EnrichResult(ALICE.user_id, "cache", first.data, 0, None)
    assert sim.calls == Counter({ALICE.user_id: 1})


async def test_stale_cache_when_the_service_fails() -> None:
    clock = FakeClock()
    cache = EnrichmentCache(ttl_seconds=300, clock=clock)
    async with running(cache=cache) as (sim, client, _):
        first = await client.enrich(ALICE)
        sim.config = FAILING
        clock.now += 299
        fresh = await client.enrich(ALICE)
        clock.now += 2
        stale = await client.enrich(ALICE)
    reason = "enrichment service answered 503 after 3 attempts"
    assert fresh.source == "cache"
    assert stale == EnrichResult(ALICE.user_id, "stale_cache", first.data, 3, reason)
    assert sim.calls == Counter({ALICE.user_id: 4})


async def test_a_stale_entry_is_refreshed_when_the_service_answers() -> None:
    clock = FakeClock()
    cache = EnrichmentCache(ttl_seconds=10, clock=clock)
    cache.put(ALICE.user_id, {"user_id": ALICE.user_id, "region": "OLD", "enriched": True})
    clock.now += 11
    async with running(cache=cache) as (_, client, _):
        result = await client.enrich(ALICE)
    assert (result.source, result.data["region"]) == ("service", "EU")
    assert cache.get(ALICE.user_id) == (result.data, True)


def test_cache_keeps_expired_entries_and_evicts_the_oldest() -> None:
    clock = FakeClock()
    cache = EnrichmentCache(ttl_seconds=5, max_entries=2, clock=clock)
    assert cache.get("a") is None
    cache.put("a", {"n": 1})
    clock.now += 5
    assert cache.get("a") == ({"n": 1}, False)
    cache.put("b", {"n": 2})
    cache.put("a", {"n": 3})  # stored again: now newer than b
    cache.put("c", {"n": 4})
    assert (len(cache), cache.get("b")) == (2, None)
    assert cache.get("a") == ({"n": 3}, True)
    data, _ = cache.get("c") or ({}, False)
    data["n"] = 99
    assert cache.get("c") == ({"n": 4}, True)
