"""Effect ids: downstream systems deduplicate by them, so they must never change."""

from __future__ import annotations

import uuid

import pytest

from fleetbatch.domain import effect_id_for
from fleetbatch.domain.items import _EFFECT_NS


@pytest.mark.parametrize(
    ("batch_id", "key", "redrive"),
    [("b1", "1FBTCMD70RA000001", 0), ("b-2", "u-ü€", 3), ("x", "", 1), ("b", "k" * 200, 0)],
)
def test_effect_id_is_the_uuid5_of_batch_key_and_redrive(
    batch_id: str, key: str, redrive: int
) -> None:
    suffix = f"/redrive-{redrive}" if redrive else ""
    expected = str(uuid.uuid5(_EFFECT_NS, f"{batch_id}/{key}{suffix}"))
    assert effect_id_for(batch_id, key, redrive) == expected


def test_a_known_effect_id_stays_the_same() -> None:
    assert effect_id_for("b1", "1FBTCMD70RA000001") == str(
        uuid.uuid5(uuid.UUID("6f1c1c2e-8a43-4a55-9d0e-5b0f7f8f4e21"), "b1/1FBTCMD70RA000001")
    )
