"""Publishing commands to the domain over the bus, behind the command type's breaker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from fleetbatch import metrics
from fleetbatch.activities.breaker import breaker_gauge
from fleetbatch.activities.types import CIRCUIT_OPEN
from fleetbatch.bus import Bus, CommandMessage, commands_subject
from fleetbatch.domain.ramp import LEAD_SECONDS
from fleetbatch.pipelines.vehicle.types import (
    ADMIT,
    PUBLISH_COMMANDS,
    AdmitInput,
    AdmitResult,
    PublishInput,
    PublishResult,
)
from fleetbatch.store import Store


class Dispatcher:
    """Publishes a chunk's commands (a round, or one item on a rate-limited queue) in
    one bus call, behind the batch's stop and the command type's breaker."""

    def __init__(self, bus: Bus, store: Store, clock: Callable[[], float] | None = None) -> None:
        """``clock``: the wall clock a maintenance window's end is compared with
        (``time.time``; tests pass their own)."""
        self._bus = bus
        self._store = store
        self._breakers = store.breakers
        self._clock = clock or time.time

    @activity.defn(name=ADMIT)
    async def admit(self, params: AdmitInput) -> AdmitResult:
        """May the chunk ``params.caller`` publish ``params.command`` now?"""
        admission = await self._breakers.admit(params.command, params.caller)
        breaker_gauge(params.command, admission.state)
        return AdmitResult(
            admission.allowed, admission.probe, admission.retry_after, admission.state
        )

    @activity.defn(name=PUBLISH_COMMANDS)
    async def publish(self, params: PublishInput) -> PublishResult:
        """Publish one command per item, each with its stable command id, unless the
        batch's maintenance window has closed or the batch was stopped (cancelled or
        aborted). Both are checked before anything is sent: nothing is published once
        the wall clock passed ``params.window_end`` (returned ``window_closed``, with
        neither the breaker nor the store touched), or once the store accepted a stop.

        Raises:
            ApplicationError: ``CircuitOpen``, in a chunk's own (local) publish, while
                the type's breaker holds publishing back; the retry comes after the
                cool-down. A publish on the rate-limited queue returns ``held``
                instead, and its chunk waits for admission without using the queue.
        """
        if params.not_before is not None:
            # A ramping batch's schedule: this chunk's slot (it started ahead of it).
            # Never longer than the lead: a slot far ahead (clocks out of step, a
            # time-skipping test server) must not hold the publish.
            wait = min(params.not_before - self._clock(), LEAD_SECONDS)
            await asyncio.sleep(max(0.0, wait))
        # The window's end is checked here, not only in the workflow: a publish queued
        # on the rate-limited queue (or waiting for its slot) may run well after its
        # chunk scheduled it.
        if params.window_end is not None and self._clock() >= params.window_end:
            activity.logger.info(
                "batch %s: its maintenance window closed, %d commands held",
                params.batch_id,
                len(params.items.ids),
            )
            return PublishResult(window_closed=True)
        if not await self._store.batches.note_publish(params.batch_id):
            activity.logger.info("batch %s was stopped: nothing published", params.batch_id)
            return PublishResult()
        admission = await self._breakers.admit(params.command, params.reply_to)
        breaker_gauge(params.command, admission.state)
        local = activity.info().is_local
        if not admission.allowed and not local:
            return PublishResult(held=True)
        if not admission.allowed:
            raise ApplicationError(
                f"circuit breaker for {params.command!r} is {admission.state}: "
                f"publishing waits {admission.retry_after:.1f}s",
                type=CIRCUIT_OPEN,
                next_retry_delay=timedelta(seconds=max(admission.retry_after, 0.1)),
            )
        items = params.items
        rows: Iterable[tuple[int, str, str]] = zip(
            items.ids, items.keys, items.effect_ids, strict=True
        )
        if not local:
            # A queued publish its chunk abandoned sends nothing for settled items.
            # (A local publish runs inside its chunk's workflow task.)
            live = await self._store.items.in_flight(params.reply_to, items.ids)
            rows = (row for row in rows if row[0] in live)
        ids: list[int] = []
        messages: list[bytes] = []
        for item_id, vin, command_id in rows:
            ids.append(item_id)
            messages.append(
                CommandMessage(
                    command_id=command_id,
                    command=params.command,
                    vin=vin,
                    batch_id=params.batch_id,
                    reply_to=params.reply_to,
                    attempt=params.attempt,
                ).encode()
            )
        if not messages:
            return PublishResult(admission.probe)
        started = time.monotonic()
        subject = commands_subject(params.domain, params.command)
        if params.pace is None:
            await self._bus.publish(subject, messages)
        else:
            await self._publish_paced(subject, messages, time.time(), params.pace)
        # Once the bus has them: an attempt in the store went out (a retry of this
        # activity publishes again under the same command ids, and keeps the first time).
        await self._store.attempts.published(ids, params.attempt)
        activity.metric_meter().create_histogram_float(
            metrics.PUBLISH_DURATION, "time to hand a round's commands to the bus", "s"
        ).record(time.monotonic() - started, {"command": params.command})
        activity.metric_meter().create_counter(metrics.PUBLISHED, "commands handed to the bus").add(
            len(messages), {"command": params.command}
        )
        return PublishResult(admission.probe)

    async def _publish_paced(
        self, subject: str, messages: list[bytes], start: float, pace: float
    ) -> None:
        """One message each ``1 / pace`` seconds from ``start``: a ramping batch's chunk
        holds at most half a second of its rate (``domain.ramp.PACE_SECONDS``), so the
        batch's stop, checked before it, is never far behind."""
        sent = 0
        while sent < len(messages):
            late = time.time() - start
            due = min(len(messages), int(late * pace) + 1)
            if due <= sent:
                await asyncio.sleep((sent - late * pace) / pace)
                continue
            await self._bus.publish(subject, messages[sent:due])
            sent = due
