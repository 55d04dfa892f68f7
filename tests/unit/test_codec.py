"""The payload codec and its key ring: AES-256-GCM, key ids, rotation, compression."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload

from fleetbatch.config import Settings
from fleetbatch.errors import CodecError, ConfigError
from fleetbatch.keys import KeyRing
from fleetbatch.temporal.codec import COMPRESSION, ENCODING, KEY_ID, EncryptionCodec
from fleetbatch.temporal.converter import DATA_CONVERTER

K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(32, 64))).decode()
VINS = ["1HGCM82633A004352", "5WBUXAPT0K1000017"] * 60


def _payload(value: object) -> Payload:
    return DATA_CONVERTER.payload_converter.to_payloads([value])[0]


def test_ring_parses_ids_and_keys_and_names_the_active_one() -> None:
    ring = KeyRing.parse(f"old:{K1}, new:{K2}", "new")
    assert ring.active == "new"
    assert ring.keys == {"old": bytes(range(32)), "new": bytes(range(32, 64))}
    assert KeyRing.parse(f"only:{K1}", None).active == "only"
    assert "K1" not in repr(ring) and K1 not in repr(ring)


@pytest.mark.parametrize(
    ("spec", "active", "message"),
    [
        (K1, None, "FLEETBATCH_CODEC_KEYS: each entry is <id>:<base64 key>"),
        (f"a:{K1},a:{K2}", "a", "FLEETBATCH_CODEC_KEYS: key id 'a' is given twice"),
        ("a:not base64!", None, "FLEETBATCH_CODEC_KEYS: key 'a' is not base64"),
        ("a:" + base64.b64encode(b"short").decode(), None, "key 'a' has 5 bytes, AES-256 needs 32"),
        (f"a:{K1},b:{K2}", None, "FLEETBATCH_CODEC_ACTIVE_KEY: name the key that encrypts new"),
        (f"a:{K1}", "c", "FLEETBATCH_CODEC_ACTIVE_KEY: 'c' is not in FLEETBATCH_CODEC_KEYS (a)"),
    ],
)
def test_ring_refuses_bad_configuration(spec: str, active: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        KeyRing.parse(spec, active)


def test_settings_parse_the_ring_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETBATCH_CODEC_KEYS", f"k1:{K1},k2:{K2}")
    monkeypatch.setenv("FLEETBATCH_CODEC_ACTIVE_KEY", "k2")
    ring = Settings().codec_key_ring
    assert ring is not None and ring.active == "k2" and set(ring.keys) == {"k1", "k2"}
    monkeypatch.setenv("FLEETBATCH_CODEC_ACTIVE_KEY", "k3")
    with pytest.raises(ConfigError, match="'k3' is not in FLEETBATCH_CODEC_KEYS"):
        Settings()


async def test_encrypted_payload_hides_the_data_and_names_its_key() -> None:
    codec = EncryptionCodec(KeyRing.parse(f"k1:{K1}", None))
    plain = _payload({"keys": VINS})
    (sealed,) = await codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k1"
    assert b"1HGCM82633A004352" not in sealed.SerializeToString()
    assert (await codec.decode([sealed])) == [plain]
    # Random nonces: the same payload never encrypts to the same bytes.
    (again,) = await codec.encode([plain])
    assert again.data != sealed.data


async def test_compression_only_where_it_makes_the_payload_smaller() -> None:
    codec = EncryptionCodec(KeyRing.parse(f"k1:{K1}", None))
    big, small = _payload({"keys": VINS}), _payload(7)
    sealed_big, sealed_small = await codec.encode([big, small])
    assert sealed_big.metadata[COMPRESSION] == b"zlib"
    assert len(sealed_big.data) < len(big.SerializeToString()) / 2
    assert COMPRESSION not in sealed_small.metadata
    assert await codec.decode([sealed_big, sealed_small]) == [big, small]
    uncompressed = EncryptionCodec(KeyRing.parse(f"k1:{K1}", None), compress=False)
    (plain_sealed,) = await uncompressed.encode([big])
    assert COMPRESSION not in plain_sealed.metadata
    assert await codec.decode([plain_sealed]) == [big]


async def test_old_keys_decrypt_after_rotation_and_new_payloads_use_the_active_key() -> None:
    before = EncryptionCodec(KeyRing.parse(f"k1:{K1}", None))
    after = EncryptionCodec(KeyRing.parse(f"k1:{K1},k2:{K2}", "k2"))
    (old,) = await before.encode([_payload("1HGCM82633A004352")])
    (new,) = await after.encode([_payload("1HGCM82633A004352")])
    assert new.metadata[KEY_ID] == b"k2"
    assert await after.decode([old, new]) == [_payload("1HGCM82633A004352")] * 2
    retired = EncryptionCodec(KeyRing.parse(f"k2:{K2}", None))
    with pytest.raises(CodecError) as failed:
        await retired.decode([old])
    assert str(failed.value) == (
        "payload encrypted with key 'k1', which is not in the key ring (k2): "
        "add it to FLEETBATCH_CODEC_KEYS"
    )


async def test_altered_payloads_fail_authentication() -> None:
    codec = EncryptionCodec(KeyRing.parse(f"k1:{K1}", None))
    (sealed,) = await codec.encode([_payload({"keys": VINS})])
    flipped = Payload(
        metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    )
    # Metadata is bound too: dropping the compression flag is caught, not mis-read.
    stripped = Payload(metadata={k: v for k, v in sealed.metadata.items() if k != COMPRESSION})
    stripped.data = sealed.data
    impostor = EncryptionCodec(KeyRing.parse(f"k1:{K2}", None))
    for bad, decoder in ((flipped, codec), (stripped, codec), (sealed, impostor)):
        with pytest.raises(
            CodecError, match="payload encrypted with key 'k1' fails authentication"
        ):
            await decoder.decode([bad])


async def test_payloads_written_before_encryption_pass_through() -> None:
    codec = EncryptionCodec(KeyRing.parse(f"k1:{K1}", None))
    plain = _payload({"keys": VINS[:2]})
    assert await codec.decode([plain]) == [plain]
