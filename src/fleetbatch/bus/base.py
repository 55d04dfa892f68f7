"""The bus interface business code depends on."""

from __future__ import annotations

import abc
import functools
from collections.abc import Awaitable, Callable, Sequence

Handler = Callable[[bytes], Awaitable[None]]
"""Receives one message; returning means it was handled (an adapter then acks it), raising
means it was not (a durable adapter redelivers it later). Handlers may run concurrently."""

DeadLetterSink = Callable[[str, bytes, str, int], Awaitable[None]]
"""Keeps a message no handler could process: (subject, payload, last error, deliveries)."""


@functools.lru_cache(maxsize=4096)
def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` matches one token, a final ``>`` one or more.
    (Cached: the in-process bus asks it for every message and subscription.)"""
    want, have = pattern.split("."), subject.split(".")
    for n, token in enumerate(want):
        if token == ">":
            return len(have) > n
        if n >= len(have) or (token != "*" and token != have[n]):
            return False
    return len(want) == len(have)


class Subscription(abc.ABC):
    """A live subscription; ``close`` stops delivery."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop receiving; messages already being handled finish."""


class Bus(abc.ABC):
    """Publish bytes to a subject; subscribe a handler to a subject (wildcards allowed)."""

    @abc.abstractmethod
    async def publish(self, subject: str, messages: Sequence[bytes]) -> None:
        """Publish ``messages`` in order; returns once the bus has accepted all of them."""

    @abc.abstractmethod
    async def subscribe(self, subject: str, handler: Handler) -> Subscription:
        """Deliver every later message on ``subject`` to ``handler``."""

    async def close(self) -> None:  # noqa: B027 - adapters with connections override it
        """Release the bus's connections."""
