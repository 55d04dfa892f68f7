"""The vehicle pipeline as the engine sees it (registered on import)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict
from typing import Any

from temporalio.common import SearchAttributeKey
from temporalio.worker import Worker

from fleetbatch.activities.items import ItemActivities
from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError, UnknownCommandError
from fleetbatch.intake import Accepted, BadRow, RawRow, Rejection
from fleetbatch.pipelines import register
from fleetbatch.pipelines.base import BatchPlan, Pipeline, WorkerContext
from fleetbatch.pipelines.vehicle.commands import get_command, publish_task_queue
from fleetbatch.pipelines.vehicle.consent import ConsentActivities
from fleetbatch.pipelines.vehicle.dispatch import Dispatcher
from fleetbatch.pipelines.vehicle.rounds import RoundStarter
from fleetbatch.pipelines.vehicle.rows import validate_rows
from fleetbatch.pipelines.vehicle.workflow import WORKFLOW_NAME, VehicleChunkWorkflow, VehicleStep

COMMAND_ATTRIBUTE = SearchAttributeKey.for_keyword("FleetbatchCommand")


class VehiclePipeline(Pipeline):
    name = "vehicle"
    key_field = "vin"
    key_name = "VIN"
    label_metric = "command"
    chunk_workflow = WORKFLOW_NAME
    description = "send a command to every vehicle: consent, publish, await the answer"

    def options(self, given: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
        unknown = sorted(set(given) - {"command"})
        if unknown:
            raise ConfigError(
                f"the vehicle pipeline takes no option {unknown[0]!r} (it takes: command)"
            )
        command = given.get("command")
        if not command:
            known = ", ".join(sorted(settings.command_types))
            raise UnknownCommandError(f"a new vehicle batch needs the command to send ({known})")
        return {"command": get_command(str(command), settings.command_types).name}

    def plan(self, options: Mapping[str, Any], settings: Settings) -> BatchPlan:
        kind = get_command(options["command"], settings.command_types)
        step = VehicleStep(
            command=kind.name,
            domain=kind.domain,
            response_timeout_seconds=settings.response_timeout_seconds
            or kind.response_timeout_seconds,
            max_attempts=kind.max_attempts,
            # Without a rate there is nothing for a queue to limit: chunks publish
            # in a local activity of their own.
            publish_task_queue=None
            if kind.publishes_in_chunk
            else publish_task_queue(settings.temporal_task_queue, kind.name),
        )
        return BatchPlan(
            label=kind.name,
            step=asdict(step),
            chunk_size=kind.chunk_size,
            max_in_flight=kind.max_in_flight,
            lease=True,
            search_attributes={COMMAND_ATTRIBUTE.name: kind.name},
            policy=kind.policy,
        )

    def validate(
        self, rows: Iterable[RawRow | BadRow], options: Mapping[str, Any], settings: Settings
    ) -> Iterator[Accepted | Rejection]:
        return validate_rows(rows, get_command(options["command"], settings.command_types))

    def normalise_key(self, text: str) -> str:
        """VINs are stored upper-case."""
        return text.strip().upper()

    def breaker(self, options: Mapping[str, Any]) -> str | None:
        """The command type's: its breaker holds publishing back when the domain fails."""
        return str(options["command"])

    def workflows(self) -> list[type]:
        return [VehicleChunkWorkflow]

    def activities(self, context: WorkerContext) -> list[Callable[..., Any]]:
        items = ItemActivities(context.store, context.client, context.settings.key_hasher)
        dispatcher = Dispatcher(
            context.resources["bus"], context.store, context.resources.get("clock")
        )
        consent = ConsentActivities(context.resources["consent"])
        return [
            consent.check,
            RoundStarter(items, consent, dispatcher).start_round,
            # Types without a rate publish in a local activity, on this worker.
            dispatcher.publish,
            dispatcher.admit,
        ]

    def workers(self, context: WorkerContext) -> list[Worker]:
        """One publish worker per command type, on the type's rate-limited queue."""
        dispatcher = Dispatcher(
            context.resources["bus"], context.store, context.resources.get("clock")
        )
        return [
            Worker(
                context.client,
                task_queue=publish_task_queue(context.task_queue, command),
                activities=[dispatcher.publish],
                max_concurrent_activities=200,
            )
            for command in context.settings.command_types
        ]

    def search_attributes(self) -> tuple[SearchAttributeKey[Any], ...]:
        return (COMMAND_ATTRIBUTE,)


PIPELINE = register(VehiclePipeline())
