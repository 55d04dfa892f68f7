"""Publishing commands to the domain over the bus."""

from __future__ import annotations

import time

from temporalio import activity

from fleetbatch import metrics
from fleetbatch.activities.types import PUBLISH_COMMANDS, PublishInput
from fleetbatch.bus import Bus, CommandMessage, commands_subject


class Dispatcher:
    """Publishes a chunk's commands in one bus call."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    @activity.defn(name=PUBLISH_COMMANDS)
    async def publish(self, params: PublishInput) -> None:
        """Publish one command per item, each with its stable command id."""
        items = params.items
        messages = [
            CommandMessage(
                command_id=command_id,
                command=params.command,
                vin=vin,
                batch_id=params.batch_id,
                reply_to=params.reply_to,
                attempt=params.attempt,
            ).encode()
            for vin, command_id in zip(items.vins, items.command_ids, strict=True)
        ]
        started = time.monotonic()
        await self._bus.publish(commands_subject(params.domain), messages)
        activity.metric_meter().create_histogram_float(
            metrics.PUBLISH_DURATION, "time to hand a chunk's commands to the bus", "s"
        ).record(time.monotonic() - started, {"command": params.command})
