"""The event bus: one small interface, an in-process implementation, real adapters later."""

from fleetbatch.bus.base import Bus, Handler, Subscription
from fleetbatch.bus.memory import MemoryBus
from fleetbatch.bus.messages import (
    RESPONSES_SUBJECT,
    CommandMessage,
    ResponseMessage,
    commands_subject,
)

__all__ = [
    "RESPONSES_SUBJECT",
    "Bus",
    "CommandMessage",
    "Handler",
    "MemoryBus",
    "ResponseMessage",
    "Subscription",
    "commands_subject",
]
