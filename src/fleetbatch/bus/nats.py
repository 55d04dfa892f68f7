"""NATS JetStream: durable streams, durable pull consumers, explicit acks, a dead-letter sink.

Two streams per namespace, created (or updated) idempotently on connect:
``<NS>_COMMANDS`` holds ``<ns>.commands.>`` (one subject per domain and command
type) and ``<NS>_RESPONSES`` holds ``<ns>.responses``. Each subscription is a
durable pull consumer named after its subject, so copies of one process share
its messages and a restarted process continues where the last one stopped.

A message is acked only after its handler returned. A handler that raises gets
the message back after the next delay of ``backoff``; a process that dies with
messages in hand gets them back after ``ack_wait``. After ``max_deliver``
failed deliveries the message goes to the dead-letter sink and is terminated.
Consent questions are plain request/reply: nothing to keep when nobody asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError

from fleetbatch.bus.base import Bus, DeadLetterSink, Handler, Subscription
from fleetbatch.bus.nats_consumer import PullConsumer
from fleetbatch.errors import BusUnavailableError

log = logging.getLogger(__name__)

_LOGICAL_ROOT = "fleetbatch."


async def _log_error(exc: Exception) -> None:
    # The client reconnects by itself; a line per failure, not a traceback.
    log.warning("NATS: %s: %s", type(exc).__name__, exc)


Responder = Callable[[bytes], Awaitable[bytes]]
"""Answers one request (consent questions)."""


@dataclass(frozen=True)
class NatsOptions:
    """How fleetbatch uses JetStream."""

    namespace: str = "fleetbatch"
    """Subjects live under ``<namespace>.``; streams are named after it (tests use their own)."""
    max_deliver: int = 5
    ack_wait_seconds: float = 30.0
    backoff_seconds: tuple[float, ...] = (1.0, 5.0, 15.0, 30.0)
    max_in_hand: int = 1000
    """Messages one subscription handles at a time."""
    max_age_seconds: float = 7 * 24 * 3600
    request_timeout_seconds: float = 10.0
    connect_timeout_seconds: float = 10.0
    """How long the first connection may take (later losses are retried for ever)."""


def stream_names(namespace: str) -> tuple[str, str]:
    """The commands and responses streams of a namespace."""
    base = re.sub(r"[^A-Za-z0-9_-]", "_", namespace).upper()
    return f"{base}_COMMANDS", f"{base}_RESPONSES"


class NatsBus(Bus):
    """The production bus. Build it with :meth:`connect`."""

    def __init__(
        self,
        nc: NatsClient,
        options: NatsOptions,
        dead_letters: DeadLetterSink | None = None,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self.options = options
        self._dead_letters = dead_letters
        self._subs: list[Subscription] = []
        self.commands_stream, self.responses_stream = stream_names(options.namespace)

    @classmethod
    async def connect(
        cls,
        url: str,
        options: NatsOptions | None = None,
        dead_letters: DeadLetterSink | None = None,
    ) -> NatsBus:
        """Connect (reconnecting for ever after a loss) and make sure the streams exist.

        Raises:
            BusUnavailableError: no NATS server answers at ``url``, or it has no JetStream.
        """
        options = options or NatsOptions()
        try:
            # Reconnecting for ever applies to the first connect too: bound that one.
            async with asyncio.timeout(options.connect_timeout_seconds):
                nc = await nats.connect(
                    url,
                    name="fleetbatch",
                    max_reconnect_attempts=-1,
                    connect_timeout=2,
                    error_cb=_log_error,
                )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            detail = str(exc) or f"no connection within {options.connect_timeout_seconds:g}s"
            raise BusUnavailableError(f"no NATS server answers at {url}: {detail}") from exc
        bus = cls(nc, options, dead_letters)
        try:
            await bus.ensure_streams()
        except nats.errors.Error as exc:
            await nc.close()
            raise BusUnavailableError(
                f"NATS at {url} has no usable JetStream: {type(exc).__name__}: {exc}"
            ) from exc
        return bus

    def subject(self, logical: str) -> str:
        """The NATS subject of a logical ``fleetbatch.…`` subject in this namespace."""
        if not logical.startswith(_LOGICAL_ROOT):
            raise ValueError(f"not a fleetbatch subject: {logical!r}")
        return f"{self.options.namespace}.{logical[len(_LOGICAL_ROOT) :]}"

    def logical(self, subject: str) -> str:
        """The logical subject of a NATS subject of this namespace (inverse of ``subject``)."""
        return _LOGICAL_ROOT + subject[len(self.options.namespace) + 1 :]

    async def ensure_streams(self) -> None:
        """Create both streams, or bring them to this configuration (idempotent)."""
        ns = self.options.namespace
        for name, subjects in (
            (self.commands_stream, [f"{ns}.commands.>"]),
            (self.responses_stream, [f"{ns}.responses"]),
        ):
            config = api.StreamConfig(
                name=name,
                subjects=subjects,
                storage=api.StorageType.FILE,
                max_age=self.options.max_age_seconds,
                duplicate_window=120.0,
            )
            try:
                await self._js.add_stream(config)
            except BadRequestError:
                await self._js.update_stream(config)

    async def delete_streams(self) -> None:
        """Remove both streams and everything in them (tests, tear-down)."""
        for name in (self.commands_stream, self.responses_stream):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self._js.delete_stream(name)

    def _stream_of(self, subject: str) -> str:
        responses = f"{self.options.namespace}.responses"
        return self.responses_stream if subject == responses else self.commands_stream

    async def publish(self, subject: str, messages: Sequence[bytes]) -> None:
        target = self.subject(subject)
        # Sent in order without waiting for each ack; returns when the stream has all.
        acks = [await self._js.publish_async(target, data) for data in messages]
        async with asyncio.timeout(self.options.request_timeout_seconds):
            await asyncio.gather(*acks)

    async def subscribe(self, subject: str, handler: Handler) -> Subscription:
        target = self.subject(subject)
        durable = re.sub(r"[^A-Za-z0-9_-]", "_", target.replace(">", "all").replace("*", "any"))
        stream = self._stream_of(target)
        config = api.ConsumerConfig(
            name=durable,
            durable_name=durable,
            filter_subject=target,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.options.ack_wait_seconds,
            # The server redelivers without limit; the consumer dead-letters past
            # ``max_deliver``. A server-side limit would strand a message whose
            # last delivery was lost in transit or whose dead-lettering failed.
            max_deliver=-1,
            max_ack_pending=self.options.max_in_hand * 4,
        )
        # Create, or bring an existing durable consumer to these settings (idempotent).
        await self._js.add_consumer(stream, config=config)
        psub = await self._js.pull_subscribe_bind(durable=durable, stream=stream)
        sub = PullConsumer(self, subject, psub, handler)
        self._subs.append(sub)
        return sub

    async def dead_letter(self, subject: str, data: bytes, error: str, deliveries: int) -> None:
        """Hand a message to the dead-letter sink (logged when there is none)."""
        log.error(
            "dead letter on %s after %d deliveries: %s",
            subject,
            deliveries,
            error,
            extra={"subject": subject, "deliveries": deliveries},
        )
        if self._dead_letters is not None:
            await self._dead_letters(subject, data, error, deliveries)

    async def request(self, subject: str, data: bytes) -> bytes:
        """Ask whoever serves ``subject`` (core NATS request/reply) and return the answer."""
        reply = await self._nc.request(
            self.subject(subject), data, timeout=self.options.request_timeout_seconds
        )
        return bytes(reply.data)

    async def serve(self, subject: str, answer: Responder) -> CoreSubscription:
        """Answer requests on ``subject``; copies of a server share them (queue group)."""

        async def on_request(msg: Msg) -> None:
            try:
                await msg.respond(await answer(msg.data))
            except Exception:
                log.exception("request on %s failed", subject)

        return await self._nc.subscribe(self.subject(subject), queue="fleetbatch", cb=on_request)

    async def close(self) -> None:
        for sub in list(self._subs):
            await sub.close()
        with contextlib.suppress(Exception):
            await self._nc.drain()

    def forget(self, sub: Subscription) -> None:
        """Called by a subscription's ``close``."""
        if sub in self._subs:
            self._subs.remove(sub)
