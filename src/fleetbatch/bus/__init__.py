"""The event bus: one small interface, an in-process implementation and NATS JetStream.

Subjects are logical (``fleetbatch.commands.<domain>.<command>``,
``fleetbatch.responses``); an adapter may place them under a namespace.
"""

from fleetbatch.bus.base import Bus, DeadLetterSink, Handler, Subscription, subject_matches
from fleetbatch.bus.memory import MemoryBus
from fleetbatch.bus.messages import (
    CONSENT_SUBJECT,
    RESPONSES_SUBJECT,
    CommandMessage,
    ResponseMessage,
    commands_subject,
    domain_subject,
)

__all__ = [
    "CONSENT_SUBJECT",
    "RESPONSES_SUBJECT",
    "Bus",
    "CommandMessage",
    "DeadLetterSink",
    "Handler",
    "MemoryBus",
    "ResponseMessage",
    "Subscription",
    "commands_subject",
    "domain_subject",
    "subject_matches",
]
