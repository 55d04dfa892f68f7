"""Bearer tokens from configuration, with two roles: viewers read, operators also act;
and the web UI's sessions, which stand for a token without holding it.

Every configured token is compared in constant time (``hmac.compare_digest``) and all
of them are always compared, so timing tells nothing about which one nearly matched.

A session is ``s1.<expiry>.<nonce>.<mac>``, the MAC an HMAC-SHA256 keyed with the token
the user logged in with. The server keeps no session state (any API replica checks it,
a restart keeps users logged in), the cookie cannot be used as a bearer token, the
token cannot be recovered from it, and removing a token from the configuration ends
its sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError

MIN_PRODUCTION_TOKEN = 16
"""Characters a token needs outside development."""

SESSION_VERSION = "s1"
_SESSION_CONTEXT = b"fleetbatch session\x00"


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
    subject: str = "open-access"
    """Which token it is, without the token (a short hash): what per-caller limits count."""

    @property
    def is_operator(self) -> bool:
        return self.role >= Role.OPERATOR


OPEN_ACCESS = Principal(Role.OPERATOR, open_access=True)
"""Everyone, when no tokens are configured (development only)."""


def _check_token(token: str, environment: str) -> None:
    if not token:
        raise ConfigError("an API token is empty: remove it or give it a value")
    if not token.strip():
        raise ConfigError("an API token is blank (only whitespace): remove it or give it a value")
    if token != token.strip():
        raise ConfigError(
            "an API token starts or ends with whitespace, which HTTP headers drop: remove it"
        )
    if environment != "development" and len(token) < MIN_PRODUCTION_TOKEN:
        raise ConfigError(
            f"an API token has {len(token)} characters; {environment} needs at least "
            f"{MIN_PRODUCTION_TOKEN} (make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )


def _subject(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()[:12]


class TokenAuth:
    """The configured tokens and their roles; sessions opened with them."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = [
            (t.get_secret_value().encode(), Role.VIEWER) for t in settings.api_viewer_tokens
        ] + [(t.get_secret_value().encode(), Role.OPERATOR) for t in settings.api_operator_tokens]
        for token, _ in self._tokens:
            _check_token(token.decode(), settings.environment)
        if not self._tokens and settings.environment != "development":
            raise ConfigError(
                f"no API tokens configured in {settings.environment}: set "
                "FLEETBATCH_API_OPERATOR_TOKENS (and FLEETBATCH_API_VIEWER_TOKENS), or "
                "FLEETBATCH_ENVIRONMENT=development for open access on this machine"
            )
        self._session_seconds = settings.api_session_seconds

    @property
    def open_access(self) -> bool:
        return not self._tokens

    def _match(self, check: Callable[[bytes], bool]) -> Principal | None:
        """The highest role whose token passes ``check(known)``; all are tried."""
        found: tuple[bytes, Role] | None = None
        for known, role in self._tokens:
            if check(known) and (found is None or role > found[1]):
                found = (known, role)
        return None if found is None else Principal(found[1], subject=_subject(found[0]))

    def principal(self, token: str | None) -> Principal | None:
        """The caller a token stands for; None for a missing or unknown token."""
        if self.open_access:
            return OPEN_ACCESS
        if not token or not token.strip():
            return None
        given = token.encode()
        return self._match(lambda known: hmac.compare_digest(given, known))

    def open_session(self, token: str, now: float | None = None) -> str | None:
        """A session value for a valid token (the login cookie); None for an invalid one."""
        if self.principal(token) is None:
            return None
        expires = int((time.time() if now is None else now) + self._session_seconds)
        body = f"{SESSION_VERSION}.{expires}.{secrets.token_urlsafe(12)}"
        key = token.encode() if not self.open_access else b""
        return f"{body}.{_mac(key, body)}"

    def session_principal(self, value: str | None, now: float | None = None) -> Principal | None:
        """The caller a session value stands for; None if unknown, forged or expired."""
        if self.open_access:
            return OPEN_ACCESS
        if not value:
            return None
        body, _, mac = value.rpartition(".")
        version, _, rest = body.partition(".")
        expires, _, _nonce = rest.partition(".")
        if version != SESSION_VERSION or not expires.isdigit() or not mac:
            return None
        if int(expires) <= (time.time() if now is None else now):
            return None
        given = mac.encode()
        return self._match(lambda known: hmac.compare_digest(given, _mac(known, body).encode()))


def _mac(key: bytes, body: str) -> str:
    return hmac.new(key, _SESSION_CONTEXT + body.encode(), hashlib.sha256).hexdigest()
