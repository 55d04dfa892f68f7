"""Write batcher routing and flush assembly: pure functions."""

from __future__ import annotations

import zlib
from collections import Counter

import pytest

from fleetbatch.activities.batcher_types import (
    FlushWritesInput,
    WriteRequest,
    batcher_workflow_id,
    shard_for,
)
from fleetbatch.activities.types import RecordOutcomesInput
from support import vins


def test_a_key_always_has_the_same_shard() -> None:
    vin = vins(1)[0]
    assert shard_for(vin, 4) == zlib.crc32(vin.encode()) % 4
    assert {shard_for(vin, 4) for _ in range(10)} == {shard_for(vin, 4)}
    assert shard_for(vin, 1) == 0


def test_vins_spread_over_every_shard() -> None:
    spread = Counter(shard_for(v, 4) for v in vins(2000))
    assert sorted(spread) == [0, 1, 2, 3]
    assert min(spread.values()) > 2000 / 4 * 0.8


def test_shards_must_be_positive() -> None:
    with pytest.raises(ValueError, match="shards must be at least 1, got 0"):
        shard_for("x", 0)


def test_batcher_ids_are_stable_per_task_queue_and_shard() -> None:
    assert batcher_workflow_id("fleetbatch", 3) == "fleetbatch-batcher-3"


def test_a_flush_writes_every_request_end_to_end() -> None:
    requests = [
        WriteRequest("a", "wf-a", RecordOutcomesInput([1], ["succeeded"], [1], [None], "wf-a")),
        WriteRequest(
            "b", "wf-b", RecordOutcomesInput([2, 3], ["failed", "cancelled"], [2, 0], ["x", None])
        ),
    ]
    flush = FlushWritesInput.of(requests)
    assert flush.outcomes == RecordOutcomesInput(
        [1, 2, 3], ["succeeded", "failed", "cancelled"], [1, 2, 0], [None, "x", None]
    )
    assert flush.release_leases_of == ["wf-a"]
