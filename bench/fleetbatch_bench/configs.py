"""What the benchmark runs: one labelled configuration per row of its table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from fleetbatch.errors import ConfigError

REFERENCE = "reference"


@dataclass(frozen=True)
class BenchConfig:
    """One row of the benchmark.

    Args:
        label: the row's name, as ``--only`` selects it.
        items: VINs in the generated file.
        chunk_size: items per chunk workflow (1 for the per-VIN reference).
        server_file: the dev server keeps its state in a SQLite file, not in memory.
        reference: run the original design's shape (``fleetbatch_bench.reference``)
            instead of fleetbatch's batch workflow.
        write_shards: per-VIN chunks record their outcomes through this many write
            batchers (0: each writes directly).
        skeleton: run the orchestration skeleton (``fleetbatch_bench.skeleton``): the
            engine alone, in fleetbatch's chunk shape, with no store, bus or simulators.
    """

    label: str
    items: int
    chunk_size: int
    server_file: bool = False
    reference: bool = False
    write_shards: int = 0
    skeleton: bool = False

    @property
    def server_state(self) -> str:
        return "file" if self.server_file else "memory"


# Sized so the whole default run takes a few minutes on a 2-core machine.
DEFAULT_CONFIGS: tuple[BenchConfig, ...] = (
    BenchConfig(REFERENCE, 300, 1, reference=True),
    BenchConfig("chunk-1", 300, 1),
    BenchConfig("chunk-10", 2_000, 10),
    BenchConfig("chunk-100", 20_000, 100),
    BenchConfig("chunk-500", 50_000, 500),
    BenchConfig("chunk-100-file", 20_000, 100, server_file=True),
    BenchConfig("skeleton-100", 20_000, 100, skeleton=True),
    BenchConfig("skeleton-500", 50_000, 500, skeleton=True),
)


# ``--batcher``: 2,000 per-VIN workflows writing directly, then through 1, 2 and 4 batchers.
BATCHER_CONFIGS: tuple[BenchConfig, ...] = (
    BenchConfig("direct", 2_000, 1),
    BenchConfig("batcher-1", 2_000, 1, write_shards=1),
    BenchConfig("batcher-2", 2_000, 1, write_shards=2),
    BenchConfig("batcher-4", 2_000, 1, write_shards=4),
)
BATCHER_MAX_IN_FLIGHT = 600
"""Per-VIN workflows at once in ``--batcher`` runs: enough to fill a flush."""
WRITE_MAX_BATCH = 100
WRITE_MAX_WAIT_SECONDS = 60.0


def select_configs(
    only: Sequence[str] = (),
    items: int | None = None,
    configs: Sequence[BenchConfig] = DEFAULT_CONFIGS,
) -> list[BenchConfig]:
    """The configurations named in ``only`` (all when empty), in their table order,
    each with ``items`` VINs when given.

    Raises:
        ConfigError: a label in ``only`` is not a configuration, or ``items`` < 1.
    """
    known = {c.label for c in configs}
    unknown = [label for label in only if label not in known]
    if unknown:
        raise ConfigError(
            f"unknown bench configuration {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(c.label for c in configs)}"
        )
    if items is not None and items < 1:
        raise ConfigError(f"items must be at least 1, got {items}")
    chosen = [c for c in configs if not only or c.label in only]
    return [replace(c, items=items) if items is not None else c for c in chosen]
