"""Client of the enrichment API: retries with backoff, a TTL cache and fallback records.

A user is never lost to a flaky API: :meth:`EnrichmentClient.enrich` always returns an
:class:`EnrichResult`, from the service, from the cache (fresh, or stale when the service
fails), or as a fallback record that says why (``enriched: False``, region ``UNKNOWN``). A
batch then records the failure per user instead of failing the whole chunk.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, Self

import httpx

logger = logging.getLogger(__name__)

EnrichSource = Literal["service", "cache", "stale_cache", "fallback"]
"""Where an :class:`EnrichResult`'s data comes from."""

SERVICE_FIELDS: Final = ("region", "segment", "score")
"""Fields a successful answer must have (beside ``user_id``)."""


@dataclass(frozen=True)
class UserRecord:
    """A user to enrich."""

    user_id: str
    email: str
    country: str
    """ISO 3166-1 alpha-2 code."""


@dataclass(frozen=True)
class EnrichResult:
    """The outcome of enriching one user.

    Attributes:
        user_id: the user.
        source: ``service`` (answered now), ``cache`` (a fresh entry, no call),
            ``stale_cache`` (the service failed; an expired entry served instead) or
            ``fallback`` (the service failed and nothing was cached).
        data: ``{"enriched": True, <the service's fields>}``, or for a fallback
            ``{"user_id", "enriched": False, "region": "UNKNOWN", "reason"}``.
        attempts: HTTP calls made for this result (0 for a cache hit).
        reason: why the service's answer is missing (stale cache, fallback), else ``None``.
    """

    user_id: str
    source: EnrichSource
    data: dict[str, Any]
    attempts: int
    reason: str | None


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff, those of the batch activities: 3 attempts, 1 s doubling to 30 s.

    Attributes:
        max_attempts: HTTP calls in total, the first included.
        initial_seconds: wait before the second attempt.
        backoff: factor from one wait to the next.
        max_seconds: cap of every wait, a server's ``Retry-After`` included.
    """

    max_attempts: int = 3
    initial_seconds: float = 1.0
    backoff: float = 2.0
    max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.initial_seconds < 0 or self.max_seconds < 0 or self.backoff < 1:
            raise ValueError(f"waits must not be negative nor shrink: {self}")

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1-based): 1, 2, 4... up to the cap."""
        return min(self.initial_seconds * self.backoff ** (attempt - 1), self.max_seconds)


DEFAULT_RETRY_POLICY: Final = RetryPolicy()


class EnrichmentCache:
    """Service answers per user id, fresh for ``ttl_seconds`` and kept after for stale use.

    An expired entry is not dropped: it is what :class:`EnrichmentClient` serves when the
    service fails. Entries are dropped only beyond ``max_entries``, the oldest stored first.
    Not thread-safe; meant for one event loop.

    Args:
        ttl_seconds: how long an entry stays fresh.
        max_entries: entries kept at most.
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(
        self,
        ttl_seconds: float = 300,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        # Insertion order is storage order (a put moves its key to the end), so the first
        # key is always the oldest entry: eviction is O(1).
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def get(self, user_id: str) -> tuple[dict[str, Any], bool] | None:
        """The entry of ``user_id`` as ``(data, fresh)``, or ``None`` when there is none.

        ``data`` is a copy: a caller that edits it does not edit the cache.
        """
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        stored_at, data = entry
        return dict(data), self._clock() - stored_at < self.ttl_seconds

    def put(self, user_id: str, data: dict[str, Any]) -> None:
        """Store ``data`` (a copy) for ``user_id``, fresh from now; evicts the oldest beyond
        ``max_entries``."""
        self._entries[user_id] = (self._clock(), dict(data))
        self._entries.move_to_end(user_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class _Failure:
    reason: str
    retryable: bool
    retry_after: float | None = None
    """The server's ``Retry-After`` in seconds (a 429), used instead of the backoff."""


class EnrichmentClient:
    """Enriches users through the enrichment API (``POST /enrich``).

    Args:
        base_url: the service, e.g. ``http://127.0.0.1:8090``.
        timeout_seconds: deadline of each attempt, connecting included.
        policy: attempts and backoff for transient failures (timeouts, connection errors,
            5xx, 429); any other 4xx is not retried.
        cache: answers to reuse; ``None`` disables caching and stale answers.
        sleep: waits between attempts (injectable so that tests need not wait).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 5.0,
        policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        cache: EnrichmentCache | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url
        self.timeout_seconds = timeout_seconds
        self.policy = policy
        self.cache = cache
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_seconds)

    async def enrich(self, user: UserRecord) -> EnrichResult:
        """Enrich ``user``; never raises for a failing service (see :class:`EnrichResult`)."""
        if self.cache is not None:
            hit = self.cache.get(user.user_id)
            if hit is not None and hit[1]:
                return EnrichResult(user.user_id, "cache", hit[0], 0, None)
        result, attempts = await self._call(user)
        if isinstance(result, dict):
            if self.cache is not None:
                self.cache.put(user.user_id, result)
            return EnrichResult(user.user_id, "service", result, attempts, None)
        reason = result.reason
        # Read again rather than reuse the lookup above: a concurrent call for the same user
        # may have stored a fresh answer while this one was failing.
        cached = self.cache.get(user.user_id) if self.cache is not None else None
        if cached is not None:
            data, fresh = cached
            if fresh:
                return EnrichResult(user.user_id, "cache", data, attempts, None)
            logger.warning("stale cache entry served: %s", reason, extra={"item_key": user.user_id})
            return EnrichResult(user.user_id, "stale_cache", data, attempts, reason)
        # Logged, not only recorded: a batch that quietly fills with fallbacks hides an outage.
        logger.warning("fallback record: %s", reason, extra={"item_key": user.user_id})
        data = {"user_id": user.user_id, "enriched": False, "region": "UNKNOWN", "reason": reason}
        return EnrichResult(user.user_id, "fallback", data, attempts, reason)

    async def _call(self, user: UserRecord) -> tuple[dict[str, Any] | _Failure, int]:
        """The service's data, or the last failure; and the attempts made."""
        payload = {"user_id": user.user_id, "email": user.email, "country": user.country}
        attempt = 0
        while True:
            attempt += 1
            result = await self._attempt(payload, attempt)
            if isinstance(result, dict) or not result.retryable:
                return result, attempt
            if attempt >= self.policy.max_attempts:
                return result, attempt
            delay = self.policy.delay(attempt)
            if result.retry_after is not None:
                # The server knows when it will take calls again; still capped, so that a
                # server asking for an hour cannot stall a chunk past its activity timeout.
                delay = min(result.retry_after, self.policy.max_seconds)
            await self._sleep(delay)

    async def _attempt(self, payload: dict[str, str], attempt: int) -> dict[str, Any] | _Failure:
        tried = _attempts(attempt)
        try:
            # httpx's timeout applies to each phase (connect, each read) separately; the outer
            # deadline makes timeout_seconds the bound of the whole attempt.
            async with asyncio.timeout(self.timeout_seconds):
                response = await self._http.post("/enrich", json=payload)
        except (TimeoutError, httpx.TimeoutException):
            return _Failure(
                f"enrichment service timed out after {tried} ({self.timeout_seconds:g}s each)",
                retryable=True,
            )
        except httpx.TransportError as exc:
            return _Failure(
                f"enrichment service unreachable after {tried} ({type(exc).__name__}: {exc})",
                retryable=True,
            )
        status = response.status_code
        if status == 429:
            return _Failure(
                f"rate limited (429) after {tried}",
                retryable=True,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 500:
            return _Failure(f"enrichment service answered {status} after {tried}", retryable=True)
        if not 200 <= status < 300:
            # The request itself is wrong (or not found): the same request fails again.
            return _Failure(f"enrichment service answered {status}, not retried", retryable=False)
        return _parse(response)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _parse(response: httpx.Response) -> dict[str, Any] | _Failure:
    """The data of a 2xx answer; a malformed one is not retried (it would come back the same)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        return _Failure(f"enrichment service answered {status} without JSON", retryable=False)
    if not isinstance(body, dict):
        return _Failure(
            f"enrichment service answered {status} with a JSON {type(body).__name__}, "
            "not an object",
            retryable=False,
        )
    missing = [name for name in SERVICE_FIELDS if name not in body]
    if missing:
        return _Failure(
            f"enrichment service answered {status} without {', '.join(missing)}",
            retryable=False,
        )
    return {**body, "enriched": True}


def _retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header; ``None`` for none, an HTTP date, or nonsense (the
    computed backoff applies then)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"
