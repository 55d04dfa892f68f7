"""Replaying dead letters: publish them again to their subject and mark them replayed."""

from __future__ import annotations

from collections.abc import Sequence

from fleetbatch.bus import Bus
from fleetbatch.store import DeadLetter, Store


async def replay_dead_letters(store: Store, bus: Bus, ids: Sequence[int]) -> list[DeadLetter]:
    """Publish the dead letters ``ids`` (every one not yet replayed when empty) again.

    Returns:
        The dead letters published; ids unknown or already replayed are left out.
    """
    letters = await store.dead_letters.list(ids=ids, limit=100_000)
    for letter in letters:
        await bus.publish(letter.subject, [letter.payload])
        # Marked one by one: a replay cut short leaves the rest replayable.
        await store.dead_letters.mark_replayed([letter.id])
    return letters
