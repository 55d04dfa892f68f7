"""Consent simulator: a stable share of VINs has no consent."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from fleetbatch.pipelines.vehicle.consent import ConsentService


class ConsentSimulator(ConsentService):
    """Denies consent for about ``no_consent_rate`` of VINs, the same ones every time.

    Args:
        no_consent_rate: share of VINs without consent, 0..1.
        seed: changes which VINs are denied.
        denied_vins: VINs always denied, whatever the rate.
    """

    def __init__(
        self, no_consent_rate: float = 0.0, seed: int = 0, denied_vins: Sequence[str] = ()
    ) -> None:
        self._rate = no_consent_rate
        self._seed = str(seed).encode()
        self._always = frozenset(denied_vins)
        self.calls = 0

    def _denied(self, vin: str) -> bool:
        if vin in self._always:
            return True
        digest = hashlib.blake2b(vin.encode(), key=self._seed, digest_size=8).digest()
        return int.from_bytes(digest) / 2**64 < self._rate

    async def denied(self, vins: Sequence[str]) -> set[str]:
        self.calls += 1
        return {v for v in vins if self._denied(v)}
