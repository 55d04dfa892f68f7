"""Tables, bulk repositories and migrations. SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from fleetbatch.store.attempts import Attempt, AttemptRepository, ItemHistory
from fleetbatch.store.batches import BatchRecord, BatchRepository, BatchStatus, NewBatch
from fleetbatch.store.breakers import BreakerPolicy, BreakerRepository
from fleetbatch.store.counts import BatchCounts, CountRepository, TimelineBucket
from fleetbatch.store.db import create_engine, dispose, migrate
from fleetbatch.store.deadletters import DeadLetter, DeadLetterRepository
from fleetbatch.store.items import ItemRepository
from fleetbatch.store.orphans import Orphan, OrphanRepository
from fleetbatch.store.uploads import UploadResult, UploadWriter


class Store:
    """The repositories over one engine."""

    def __init__(self, engine: AsyncEngine, breaker_policy: BreakerPolicy | None = None) -> None:
        self.engine = engine
        self.breakers = BreakerRepository(engine, breaker_policy or BreakerPolicy())
        self.batches = BatchRepository(engine)
        self.counts = CountRepository(engine)
        self.items = ItemRepository(engine, self.breakers, self.counts)
        self.attempts = AttemptRepository(engine)
        self.uploads = UploadWriter(engine)
        self.dead_letters = DeadLetterRepository(engine)
        self.orphans = OrphanRepository(engine)

    @classmethod
    async def open(cls, url: str, breaker_policy: BreakerPolicy | None = None) -> Store:
        """Connect and migrate to the newest schema."""
        engine = create_engine(url)
        await migrate(engine)
        return cls(engine, breaker_policy)

    async def close(self) -> None:
        """Release every connection."""
        await dispose(self.engine)


__all__ = [
    "Attempt",
    "AttemptRepository",
    "BatchCounts",
    "BatchRecord",
    "BatchRepository",
    "BatchStatus",
    "BreakerPolicy",
    "BreakerRepository",
    "CountRepository",
    "DeadLetter",
    "DeadLetterRepository",
    "ItemHistory",
    "ItemRepository",
    "NewBatch",
    "Orphan",
    "OrphanRepository",
    "Store",
    "TimelineBucket",
    "UploadResult",
    "UploadWriter",
]
