"""What travels on the bus: commands to domains and their responses, as JSON."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

RESPONSES_SUBJECT = "fleetbatch.responses"
CONSENT_SUBJECT = "fleetbatch.consent"
"""Consent questions (request/reply, not stored): a JSON list of VINs in, the denied ones out."""


def commands_subject(domain: str, command: str) -> str:
    """The subject one command type's commands are published on."""
    return f"fleetbatch.commands.{domain}.{command}"


def domain_subject(domain: str) -> str:
    """The wildcard subject a domain listens on: every command type of the domain."""
    return f"fleetbatch.commands.{domain}.>"


@dataclass(frozen=True, slots=True)
class CommandMessage:
    """One command for one vehicle. ``command_id`` is stable across re-publishes."""

    command_id: str
    command: str
    vin: str
    batch_id: str
    reply_to: str
    """The workflow id waiting for the response."""
    attempt: int

    def encode(self) -> bytes:
        """JSON bytes (UTF-8, compact, fields in declaration order)."""
        return orjson.dumps(self)

    @classmethod
    def decode(cls, data: bytes) -> CommandMessage:
        """Parse JSON bytes."""
        return cls(**orjson.loads(data))


@dataclass(frozen=True, slots=True)
class ResponseMessage:
    """The domain's answer to one command."""

    command_id: str
    reply_to: str
    ok: bool
    error: str | None = None
    vin: str = ""
    batch_id: str = ""

    def encode(self) -> bytes:
        """JSON bytes (UTF-8, compact, fields in declaration order)."""
        return orjson.dumps(self)

    @classmethod
    def decode(cls, data: bytes) -> ResponseMessage:
        """Parse JSON bytes."""
        return cls(**orjson.loads(data))
