"""Workflows run without the SDK's sandbox, so their imports are checked here:
workflow modules may import only pure code (no I/O, no clocks of their own)."""

from __future__ import annotations

import ast
from pathlib import Path

import fleetbatch.workflows

ALLOWED_FLEETBATCH = (
    "fleetbatch.domain",
    "fleetbatch.activities.types",
    "fleetbatch.activities.batcher_types",
    "fleetbatch.workflows",
)
# gauges: process-wide metric series (no I/O; a run reports its window there).
ALLOWED_MODULES = {"fleetbatch.metrics", "fleetbatch.gauges"}
ALLOWED_STDLIB = {"__future__", "asyncio", "contextlib", "collections", "dataclasses"}
ALLOWED_STDLIB |= {"datetime", "typing", "zlib", "hashlib", "enum", "math"}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            names += [
                f"{base}.{alias.name}" if base == "fleetbatch" else base for alias in node.names
            ]
    return names


def _allowed(name: str) -> bool:
    if name.startswith("temporalio"):
        return True
    if name.startswith("fleetbatch"):
        return name in ALLOWED_MODULES or name.startswith(ALLOWED_FLEETBATCH)
    return name.split(".")[0] in ALLOWED_STDLIB


def test_workflow_modules_import_only_pure_code() -> None:
    folder = Path(fleetbatch.workflows.__file__).parent
    modules = sorted(folder.glob("*.py"))
    assert modules
    offending = {
        f"{path.name}: {name}" for path in modules for name in _imports(path) if not _allowed(name)
    }
    assert offending == set()


def test_the_check_catches_an_io_import() -> None:
    assert not _allowed("fleetbatch.store")
    assert not _allowed("sqlalchemy")
    assert not _allowed("random")
    assert _allowed("fleetbatch.domain.items")
