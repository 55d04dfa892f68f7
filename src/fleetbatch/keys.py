"""Keys from configuration: the payload key ring and the item-key hasher.

Pure: parsing, validation and HMAC only. The payload codec that uses the ring is
``fleetbatch.temporal.codec``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from fleetbatch.errors import ConfigError

KEY_BYTES = 32
"""AES-256: every payload key is 32 random bytes."""
HASH_HEX_CHARS = 16
"""A keyed hash is cut to 64 bits (16 hex digits): as long as a VIN, so a chunk's
search attribute holds as many, and a collision among a million keys has odds of
about 3 in 100 million."""
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
NEW_KEY_HINT = "generate one with: openssl rand -base64 32"


@dataclass(frozen=True)
class KeyRing:
    """Payload keys by id; ``active`` encrypts, every key decrypts."""

    keys: dict[str, bytes]
    active: str

    @classmethod
    def parse(cls, spec: str, active: str | None) -> KeyRing:
        """A ring from ``"id1:base64key,id2:base64key"`` and the active key's id
        (optional with a single key).

        Raises:
            ConfigError: a malformed entry, an id given twice, a key that is not 32
                bytes of base64, or no (or an unknown) active key.
        """
        keys: dict[str, bytes] = {}
        for entry in (e.strip() for e in spec.split(",")):
            key_id, sep, encoded = entry.partition(":")
            key_id = key_id.strip()
            if not sep or not _KEY_ID.match(key_id):
                raise ConfigError(
                    "FLEETBATCH_CODEC_KEYS: each entry is <id>:<base64 key>, with an id of "
                    "letters, digits, '_', '.' or '-'"
                )
            if key_id in keys:
                raise ConfigError(f"FLEETBATCH_CODEC_KEYS: key id {key_id!r} is given twice")
            keys[key_id] = _decode_key(key_id, encoded.strip())
        if active is None:
            if len(keys) != 1:
                raise ConfigError(
                    "FLEETBATCH_CODEC_ACTIVE_KEY: name the key that encrypts new payloads "
                    f"(one of {', '.join(sorted(keys))})"
                )
            active = next(iter(keys))
        if active not in keys:
            raise ConfigError(
                f"FLEETBATCH_CODEC_ACTIVE_KEY: {active!r} is not in FLEETBATCH_CODEC_KEYS "
                f"({', '.join(sorted(keys))})"
            )
        return cls(keys, active)

    def __repr__(self) -> str:  # never the keys themselves
        return f"KeyRing(ids={sorted(self.keys)}, active={self.active!r})"


def _decode_key(key_id: str, encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"FLEETBATCH_CODEC_KEYS: key {key_id!r} is not base64; {NEW_KEY_HINT}"
        ) from None
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"FLEETBATCH_CODEC_KEYS: key {key_id!r} has {len(key)} bytes, AES-256 needs "
            f"{KEY_BYTES}; {NEW_KEY_HINT}"
        )
    return key


class KeyHasher:
    """The keyed hash (HMAC-SHA256, cut to 16 hex digits) that stands for an item key
    where the key itself may not go: search attributes and production logs.

    Without the secret a hash cannot be computed from a guessed VIN, so the search
    attribute does not give away which vehicles a batch commands.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ConfigError(
                "FLEETBATCH_KEY_HASH_SECRET: give at least 16 bytes (32 random bytes "
                "recommended; openssl rand -base64 32)"
            )
        self._secret = secret

    def hash(self, key: str) -> str:
        """The keyed hash of ``key``."""
        digest = hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()
        return digest[:HASH_HEX_CHARS]

    def hashes(self, keys: list[str]) -> list[str]:
        """The keyed hash of each of ``keys``, in order."""
        return [self.hash(k) for k in keys]

    def __repr__(self) -> str:
        return "KeyHasher(<secret>)"
