"""Consent over the bus: a client for workers and a server for a consent service process.

Questions are request/reply on ``CONSENT_SUBJECT``: a JSON list of VINs in, the
denied ones out. A worker asks; ``fleetbatch simulate consent`` (or a real
consent service speaking the same subject) answers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from nats.aio.subscription import Subscription

from fleetbatch.bus import CONSENT_SUBJECT
from fleetbatch.bus.nats import NatsBus
from fleetbatch.pipelines.vehicle.consent import ConsentService


class BusConsentService(ConsentService):
    """Asks the consent service over NATS; a timeout fails the activity, which retries."""

    def __init__(self, bus: NatsBus) -> None:
        self._bus = bus

    async def denied(self, vins: Sequence[str]) -> set[str]:
        answer = await self._bus.request(CONSENT_SUBJECT, json.dumps(list(vins)).encode())
        return set(json.loads(answer))


async def serve_consent(bus: NatsBus, service: ConsentService) -> Subscription:
    """Answer consent questions on the bus with ``service``."""

    async def answer(data: bytes) -> bytes:
        vins = json.loads(data)
        return json.dumps(sorted(await service.denied(vins))).encode()

    return await bus.serve(CONSENT_SUBJECT, answer)
