"""What payload encryption costs on real histories: sizes with and without zlib
before AES-GCM, and CPU per payload (docs/security.md has the figures).

    python -m fleetbatch_bench.codec_sizes HISTORY.json ...

A history is ``temporal workflow show --output json`` of a workflow run without
encryption (its payloads as fleetbatch's converter writes them).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from fleetbatch.keys import KeyRing
from fleetbatch.temporal.codec import EncryptionCodec

ROUNDS = 50


def payloads_of(message: Message) -> Iterator[Payload]:
    """Every payload of ``message`` a codec encodes (search attributes are not)."""
    for field, value in message.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            values = list(value.values())
        else:
            values = list(value) if field.is_repeated else [value]
        for v in values:
            if isinstance(v, Payload):
                yield v
            else:
                yield from payloads_of(v)


@dataclass(frozen=True)
class Sizes:
    payloads: int
    plain: int
    encrypted: int
    compressed: int
    encode_us: float
    """CPU per payload to encrypt with zlib where it pays, in microseconds."""
    decode_us: float
    plain_encode_us: float
    """CPU per payload to encrypt without zlib."""


async def measure(payloads: Sequence[Payload]) -> Sizes:
    """Sizes and CPU of ``payloads`` through the codec, with and without zlib."""
    ring = KeyRing.parse(f"m:{base64.b64encode(os.urandom(32)).decode()}", None)
    zipped, unzipped = EncryptionCodec(ring), EncryptionCodec(ring, compress=False)
    packed = await zipped.encode(payloads)
    sealed = await unzipped.encode(payloads)
    per = 1e6 / (ROUNDS * max(len(payloads), 1))
    return Sizes(
        len(payloads),
        sum(p.ByteSize() for p in payloads),
        sum(p.ByteSize() for p in sealed),
        sum(p.ByteSize() for p in packed),
        await _cpu(zipped.encode, payloads) * per,
        await _cpu(zipped.decode, packed) * per,
        await _cpu(unzipped.encode, payloads) * per,
    )


async def _cpu(
    step: Callable[[Sequence[Payload]], Awaitable[list[Payload]]], payloads: Sequence[Payload]
) -> float:
    started = time.process_time()
    for _ in range(ROUNDS):
        await step(payloads)
    return time.process_time() - started


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("histories", nargs="+", type=Path)
    args = parser.parse_args(argv)
    print(
        "| history | payloads | in clear | encrypted | zlib + encrypted | "
        "encode (zlib) | encode (no zlib) | decode |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path in args.histories:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        payloads = [p for event in history.events for p in payloads_of(event)]
        s = asyncio.run(measure(payloads))
        print(
            f"| {path.stem} | {s.payloads} | {s.plain:,} B | {s.encrypted:,} B | "
            f"{s.compressed:,} B | {s.encode_us:.0f} µs | {s.plain_encode_us:.0f} µs | "
            f"{s.decode_us:.0f} µs |"
        )


if __name__ == "__main__":
    main()
