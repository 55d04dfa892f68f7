"""Consent: which vehicles' owners allow remote commands. Checked in bulk, cached."""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence

from temporalio import activity

from fleetbatch.pipelines.vehicle.types import CHECK_CONSENT, ConsentInput, ConsentResult

_MAX_CACHED = 200_000


class ConsentService(abc.ABC):
    """Answers consent for many VINs in one call."""

    @abc.abstractmethod
    async def denied(self, vins: Sequence[str]) -> set[str]:
        """The VINs among ``vins`` without consent."""


class ConsentActivities:
    """The consent check with a time-bounded cache in front of the service."""

    def __init__(self, service: ConsentService, ttl_seconds: float = 300.0) -> None:
        self._service = service
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, bool]] = {}

    @activity.defn(name=CHECK_CONSENT)
    async def check(self, params: ConsentInput) -> ConsentResult:
        """VINs without consent; unknown or stale ones are asked in one call."""
        now = time.monotonic()
        answers: dict[str, bool] = {}
        ask: list[str] = []
        for vin in params.vins:
            hit = self._cache.get(vin)
            if hit is None or hit[0] < now:
                ask.append(vin)
            else:
                answers[vin] = hit[1]
        if ask:
            denied = await self._service.denied(ask)
            if len(self._cache) > _MAX_CACHED:
                self._cache.clear()
            expires = now + self._ttl
            for vin in ask:
                answers[vin] = vin in denied
                self._cache[vin] = (expires, answers[vin])
        return ConsentResult([v for v in params.vins if answers[v]])
