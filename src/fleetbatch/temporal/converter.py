"""fleetbatch's data converter: the SDK's ``json/plain`` payloads, converted faster.

The SDK's JSON converter deep-copies every dataclass (``dataclasses.asdict``)
to encode it, and to decode it resolves the dataclass's type hints
(``typing.get_type_hints``) and converts every element of every list one call
at a time — on every payload. A chunk's payloads are columns of a hundred
ids, VINs and command ids, so that was a large share of the worker's CPU.

This converter writes the same format (``json/plain``, compact, keys sorted)
with orjson and decodes through a decoder built once per type hint. The
shapes fleetbatch's payloads use — dataclasses, lists, ``X | None``, str,
int, float, bool, enums — decode directly; anything else, and any value that
does not match its hint, goes to the SDK's own ``value_to_type``, which
converts it or raises its usual ``TypeError``. Payloads stay readable by any
Temporal SDK, and histories written with the SDK's converter decode the same.
One difference: a float that is not finite is written as ``null`` (standard
JSON has no NaN or Infinity; the SDK writes them anyway). fleetbatch's
payloads carry none.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable
from typing import Any

import orjson
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    value_to_type,
)

Decoder = Callable[[Any], Any]
_PRIMITIVES: frozenset[type] = frozenset({str, int, float, bool})


class FastJSONPayloadConverter(JSONPlainPayloadConverter):
    """``json/plain`` with orjson and decoders cached per type hint."""

    def to_payload(self, value: Any) -> Payload | None:
        try:
            data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # what orjson cannot encode (a set, a huge int): the SDK's way
            return super().to_payload(value)
        return Payload(metadata={"encoding": b"json/plain"}, data=data)

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            value = orjson.loads(payload.data)
        except orjson.JSONDecodeError:  # NaN and Infinity, which the SDK writes and orjson refuses
            return super().from_payload(payload, type_hint)
        if type_hint is None:
            return value
        return decoder_for(type_hint)(value)


def _sdk(hint: Any) -> Decoder:
    return functools.partial(value_to_type, hint)


def _primitive(hint: type) -> Decoder:
    sdk = _sdk(hint)

    def decode(value: Any) -> Any:
        # int and float hints accept either number, as the SDK's do; bool is not an int here.
        return value if type(value) is hint else sdk(value)

    return decode


def _list_of(item_hint: Any) -> Decoder:
    hint = list[item_hint]
    sdk = _sdk(hint)
    if item_hint in _PRIMITIVES:

        def decode_primitives(value: Any) -> Any:
            if type(value) is list and all(type(v) is item_hint for v in value):
                return value
            return sdk(value)

        return decode_primitives
    item = decoder_for(item_hint)

    def decode(value: Any) -> Any:
        return [item(v) for v in value] if type(value) is list else sdk(value)

    return decode


def _optional(inner_hint: Any) -> Decoder:
    inner = decoder_for(inner_hint)
    return lambda value: None if value is None else inner(value)


def _enum(hint: type[enum.Enum]) -> Decoder:
    sdk = _sdk(hint)

    def decode(value: Any) -> Any:
        try:
            return hint(value)
        except ValueError:
            return sdk(value)

    return decode


def _dataclass(hint: type) -> Decoder:
    sdk = _sdk(hint)
    fields: list[tuple[str, Decoder, bool]] = []

    def decode(value: Any) -> Any:
        if type(value) is not dict:
            return sdk(value)  # raises the SDK's TypeError
        init: dict[str, Any] = {}
        late: dict[str, Any] = {}
        for name, field_decoder, in_init in fields:
            if name in value:
                try:
                    converted = field_decoder(value[name])
                except Exception as err:  # as the SDK reports it
                    raise TypeError(f"Failed converting field {name} on dataclass {hint}") from err
                (init if in_init else late)[name] = converted
        obj = hint(**init)
        for name, field_value in late.items():
            object.__setattr__(obj, name, field_value)
        return obj

    # Registered before the fields resolve, so a dataclass that refers to itself terminates.
    _DECODERS[hint] = decode
    try:
        hints = typing.get_type_hints(hint, globalns=_defining_globals(hint))
    except NameError:  # an annotation the class's own module cannot resolve
        _DECODERS[hint] = sdk
        return sdk
    fields.extend((f.name, decoder_for(hints[f.name]), f.init) for f in dataclasses.fields(hint))
    return decode


def _defining_globals(cls: type) -> dict[str, Any] | None:
    """The globals of the module ``cls`` was defined in.

    ``get_type_hints`` would look its annotations up in ``sys.modules`` as it is
    when called, and the workflow sandbox (replays run in one) swaps that for
    its own re-imported modules: a decoder built there would produce the
    sandbox's classes ever after. The ``__init__`` a dataclass generates keeps
    the globals it was created with.
    """
    init = cls.__dict__.get("__init__")
    return getattr(init, "__globals__", None)


_DECODERS: dict[Any, Decoder] = {}


def decoder_for(hint: Any) -> Decoder:
    """The decoder of ``hint``, built on first use."""
    try:
        return _DECODERS[hint]
    except KeyError:
        pass
    except TypeError:  # an unhashable hint
        return _sdk(hint)
    decoder = _build(hint)
    _DECODERS[hint] = decoder
    return decoder


def _build(hint: Any) -> Decoder:
    if hint in _PRIMITIVES:
        return _primitive(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and len(args) == 1:
        return _list_of(args[0])
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return _optional(args[0] if args[1] is type(None) else args[1])
    return _sdk(hint)


class _PayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        converters = [
            FastJSONPayloadConverter() if type(c) is JSONPlainPayloadConverter else c
            for c in DefaultPayloadConverter.default_encoding_payload_converters
        ]
        super().__init__(*converters)


DATA_CONVERTER = DataConverter(payload_converter_class=_PayloadConverter)
"""The converter of every client fleetbatch connects (and so of its workers)."""
