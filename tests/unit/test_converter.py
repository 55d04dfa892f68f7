"""fleetbatch's payload converter against the SDK's: same values both ways, same errors."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.converter import DataConverter

from fleetbatch.activities.types import (
    BeginChunkResult,
    ChunkResult,
    ItemColumns,
    RecordOutcomesInput,
)
from fleetbatch.domain import BreakerCount, BreakerSeen, ChunkSpec, ItemStatus, Outcome
from fleetbatch.pipelines.vehicle.types import PublishInput
from fleetbatch.pipelines.vehicle.workflow import Responses
from fleetbatch.temporal.converter import DATA_CONVERTER
from fleetbatch.workflows.chunk import ChunkInput

SDK = DataConverter.default.payload_converter
OURS = DATA_CONVERTER.payload_converter


@dataclass
class Nested:
    when: datetime
    tags: set[str] = field(default_factory=set)
    late: int = field(default=0, init=False)
    maybe: list[Outcome] | None = None
    counts: dict[str, int] = field(default_factory=dict)


def _nested() -> Nested:
    value = Nested(datetime(2026, 11, 30, 7, 0, 1, 250, tzinfo=UTC), {"b", "a"})
    value.late = 7
    value.maybe = [Outcome(3, ItemStatus.FAILED, 2, "no"), Outcome(4, ItemStatus.SUCCEEDED, 1)]
    value.counts = {"succeeded": 1, "failed": 1}
    return value


VALUES: list[tuple[Any, Any]] = [
    (
        BeginChunkResult(
            ItemColumns([1, 2], ["1HGCM82633A004352", "WVWZZZ1JZXW000001"], ["a", "b"])
        ),
        BeginChunkResult,
    ),
    (BeginChunkResult(ItemColumns([7], ["u-1"], ["e"]), blocked=3), BeginChunkResult),
    (Responses(["a", "b"], [True, False], [None, "unreachable"]), Responses),
    (
        RecordOutcomesInput.of(
            [Outcome(1, ItemStatus.SUCCEEDED, 1), Outcome(2, ItemStatus.FAILED, 3, "timeout")],
            "chunk-1",
            breaker=BreakerCount("lock_doors", 1, 1, False),
            report_to="batch",
            report=ChunkResult("chunk-1", 2, {"succeeded": 1, "failed": 1}),
        ),
        RecordOutcomesInput,
    ),
    (
        ChunkResult("chunk-1", 2, {"failed": 2}, BreakerSeen("lock_doors", "open", 1765.25)),
        ChunkResult,
    ),
    (
        ChunkInput(
            "b1",
            "batch-b1",
            ChunkSpec(1, 100, 100),
            "vehicle",
            {"command": "lock_doors", "max_attempts": 3, "publish_task_queue": None},
            True,
            8.0,
            3,
        ),
        ChunkInput,
    ),
    (
        ChunkInput("b2", "batch-b2", ChunkSpec(5, 5, 1), "enrich", {"format": "csv"}, False),
        ChunkInput,
    ),
    (
        PublishInput("vehicle", "lock_doors", "b1", "chunk-1", 2, ItemColumns([1], ["V"], ["c"])),
        PublishInput,
    ),
    (_nested(), Nested),
    ([1, 2.5, "x", None, True], list[Any]),
    ({"a": [1, 2]}, dict[str, list[int]]),
    (3, float),
    ("ü → ✓", str),
]


@pytest.mark.parametrize(("value", "hint"), VALUES)
def test_values_round_trip_between_the_two_converters(value: Any, hint: Any) -> None:
    ours, sdk = OURS.to_payloads([value])[0], SDK.to_payloads([value])[0]
    assert ours.metadata == sdk.metadata
    assert json.loads(ours.data) == json.loads(sdk.data)
    for payload in (ours, sdk):
        assert OURS.from_payloads([payload], [hint]) == SDK.from_payloads([payload], [hint])
    assert OURS.from_payloads([sdk], [hint])[0] == SDK.from_payloads([sdk], [hint])[0]


def test_decoded_values_are_typed() -> None:
    payload = OURS.to_payloads([_nested()])[0]
    decoded = OURS.from_payloads([payload], [Nested])[0]
    assert decoded.when == datetime(2026, 11, 30, 7, 0, 1, 250, tzinfo=UTC)
    assert decoded.tags == {"a", "b"}
    assert decoded.late == 7
    assert decoded.maybe is not None and decoded.maybe[0].status is ItemStatus.FAILED
    assert OURS.from_payloads([OURS.to_payloads([3])[0]], [float])[0] == 3.0
    assert isinstance(OURS.from_payloads([OURS.to_payloads([3])[0]], [float])[0], float)


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        ({"ids": "1", "keys": [], "effect_ids": []}, ItemColumns),
        ({"ids": [1, "2"], "keys": [], "effect_ids": []}, ItemColumns),
        ([1, 2], ItemColumns),
        ({"item_id": 1, "status": "exploded", "attempts": 1}, Outcome),
        ({"item_id": "1", "status": "failed", "attempts": 1}, Outcome),
        ({"status": "failed", "attempts": 1}, Outcome),
    ],
)
def test_a_value_that_does_not_match_its_type_fails_as_with_the_sdk(data: Any, hint: Any) -> None:
    payload = SDK.to_payloads([data])[0]
    with pytest.raises((TypeError, ValueError)) as sdk_error:
        SDK.from_payloads([payload], [hint])
    with pytest.raises((TypeError, ValueError)) as our_error:
        OURS.from_payloads([payload], [hint])
    assert type(our_error.value) is type(sdk_error.value)


def test_what_orjson_cannot_write_or_read_goes_the_sdk_way() -> None:
    huge = 2**70
    assert OURS.from_payloads(OURS.to_payloads([huge]), [int]) == [huge]
    infinite = SDK.to_payloads([float("inf")])[0]
    assert OURS.from_payloads([infinite], [float]) == [float("inf")]


def test_a_decoder_built_while_sys_modules_is_swapped_keeps_the_defining_modules_classes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As inside the workflow sandbox, which puts its own copies of modules there."""
    source = (
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\n"
        "@dataclass\nclass Inner:\n    n: int\n"
        "@dataclass\nclass Outer:\n    inner: Inner\n"
    )
    real, copy = types.ModuleType("fb_converter_probe"), types.ModuleType("fb_converter_probe")
    monkeypatch.setitem(sys.modules, "fb_converter_probe", real)
    exec(source, vars(real))
    monkeypatch.setitem(sys.modules, "fb_converter_probe", copy)
    exec(source, vars(copy))
    payload = OURS.to_payloads([real.Outer(real.Inner(1))])[0]
    decoded = OURS.from_payloads([payload], [real.Outer])[0]
    assert type(decoded.inner) is real.Inner
    assert OURS.from_payloads([payload], [copy.Outer])[0].inner.__class__ is copy.Inner
