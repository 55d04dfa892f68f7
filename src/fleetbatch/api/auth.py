"""Bearer tokens from configuration, with two roles: viewers read, operators also act.

Every configured token is compared in constant time (``hmac.compare_digest``) and all
of them are always compared, so timing tells nothing about which one nearly matched.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import IntEnum

from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError


class Role(IntEnum):
    """What a token may do; a higher role may do all a lower one may."""

    VIEWER = 1
    OPERATOR = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    role: Role
    open_access: bool = False
    """No tokens are configured (development only): everyone is an operator."""

    @property
    def is_operator(self) -> bool:
        return self.role >= Role.OPERATOR


class TokenAuth:
    """The configured tokens and their roles."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = [
            (t.get_secret_value().encode(), Role.VIEWER) for t in settings.api_viewer_tokens
        ] + [(t.get_secret_value().encode(), Role.OPERATOR) for t in settings.api_operator_tokens]
        if any(not token for token, _ in self._tokens):
            raise ConfigError("an API token is empty: remove it or give it a value")
        if not self._tokens and settings.environment != "development":
            raise ConfigError(
                f"no API tokens configured in {settings.environment}: set "
                "FLEETBATCH_API_OPERATOR_TOKENS (and FLEETBATCH_API_VIEWER_TOKENS), or "
                "FLEETBATCH_ENVIRONMENT=development for open access on this machine"
            )

    @property
    def open_access(self) -> bool:
        return not self._tokens

    def principal(self, token: str | None) -> Principal | None:
        """The caller a token stands for; None for a missing or unknown token."""
        if self.open_access:
            return Principal(Role.OPERATOR, open_access=True)
        if not token:
            return None
        given = token.encode()
        found: Role | None = None
        for known, role in self._tokens:
            if hmac.compare_digest(given, known) and (found is None or role > found):
                found = role
        return None if found is None else Principal(found)
