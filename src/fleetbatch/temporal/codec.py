"""Payload encryption: AES-256-GCM under a key ring, zlib first where it pays.

Every payload a fleetbatch client or worker sends to Temporal (workflow and
activity inputs and results, signals, local-activity markers, memos, failure
messages) goes through :class:`EncryptionCodec`; the server, and anyone who
reads its database or a history export, sees ciphertext. An encoded payload is::

    metadata: encoding = binary/encrypted
              encryption-key-id = <id of the key that encrypted it>
              fleetbatch-compression = zlib        (only when compressed)
    data:     12-byte random nonce || AES-GCM(serialized inner payload)

The key id and compression flag are bound to the ciphertext as associated
data: a payload whose metadata was changed fails to decrypt. Payloads that are
not ``binary/encrypted`` (histories written before encryption was on) pass
through decoding unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from fleetbatch.config import Settings
from fleetbatch.errors import CodecError
from fleetbatch.keys import KeyRing
from fleetbatch.temporal.converter import DATA_CONVERTER

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
COMPRESSION = "fleetbatch-compression"
ZLIB = b"zlib"
NONCE_BYTES = 12
COMPRESS_MIN_BYTES = 256
"""Smaller payloads are not worth compressing (docs/security.md has the figures)."""
_AAD = b"fleetbatch-codec-v1"


class EncryptionCodec(PayloadCodec):
    """Encrypts with the ring's active key, decrypts with whichever key a payload names.

    Args:
        ring: the keys.
        compress: zlib-compress a payload of at least ``COMPRESS_MIN_BYTES`` before
            encrypting it, when that makes it smaller.
    """

    def __init__(self, ring: KeyRing, *, compress: bool = True) -> None:
        super().__init__()
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}
        self._active = ring.active
        self._compress = compress

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """``payload`` encrypted with the active key."""
        data = payload.SerializeToString()
        metadata = {"encoding": ENCODING, KEY_ID: self._active.encode()}
        if self._compress and len(data) >= COMPRESS_MIN_BYTES:
            packed = zlib.compress(data, 6)
            if len(packed) < len(data):
                data = packed
                metadata[COMPRESSION] = ZLIB
        nonce = os.urandom(NONCE_BYTES)
        aad = _aad(metadata[KEY_ID], metadata.get(COMPRESSION, b""))
        sealed = self._ciphers[self._active].encrypt(nonce, data, aad)
        return Payload(metadata=metadata, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The payload ``payload`` encrypts; ``payload`` itself when not encrypted.

        Raises:
            CodecError: the payload names a key the ring lacks, or fails
                authentication (corrupted, tampered, or encrypted under another key
                with this id).
        """
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(sorted(self._ciphers))
            raise CodecError(
                f"payload encrypted with key {key_id!r}, which is not in the key ring "
                f"({known}): add it to FLEETBATCH_CODEC_KEYS"
            )
        compression = payload.metadata.get(COMPRESSION, b"")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            data = cipher.decrypt(nonce, sealed, _aad(key_id.encode(), compression))
        except InvalidTag:
            raise CodecError(
                f"payload encrypted with key {key_id!r} fails authentication: "
                "corrupted, altered, or sealed with another key of that id"
            ) from None
        if compression == ZLIB:
            data = zlib.decompress(data)
        elif compression:
            raise CodecError(f"unknown payload compression {compression.decode()!r}")
        return Payload.FromString(data)


def _aad(key_id: bytes, compression: bytes) -> bytes:
    return b"\x00".join((_AAD, key_id, compression))


def encrypting(converter: DataConverter, codec: PayloadCodec) -> DataConverter:
    """``converter`` with ``codec`` on its payloads, and failure messages and stack
    traces moved into the (encoded) failure payload: the SDK otherwise leaves them
    in clear, and a message may name an item."""
    return dataclasses.replace(
        converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def codec_for(settings: Settings) -> EncryptionCodec | None:
    """The payload codec the settings configure; None without keys."""
    ring = settings.codec_key_ring
    return None if ring is None else EncryptionCodec(ring, compress=settings.codec_compress)


def data_converter(settings: Settings) -> DataConverter:
    """fleetbatch's converter, encrypting when a key ring is configured: the one of
    every client fleetbatch connects, and so of its workers."""
    codec = codec_for(settings)
    return DATA_CONVERTER if codec is None else encrypting(DATA_CONVERTER, codec)
