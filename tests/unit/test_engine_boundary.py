"""The engine knows nothing of vehicles: its source never speaks of VINs, consent
or commands. Those belong to the vehicle pipeline (``fleetbatch.pipelines.vehicle``);
the engine speaks of items, keys, effects and pipelines."""

from __future__ import annotations

import re
from pathlib import Path

import fleetbatch

SRC = Path(fleetbatch.__file__).parent
ENGINE = ("workflows", "activities", "store", "domain", "intake")
EXCLUDED = ("store/migrations",)
"""The one initial migration creates the schema as it is; it is not engine code."""

VEHICLE_WORDS = re.compile(r"\b(?:vins?|consent|commands?)\b", re.IGNORECASE)

ALLOWED = {
    ("store/db.py", "from alembic import command"),
    ("store/db.py", 'command.upgrade(config, "head")'),
}
"""(file, whole stripped line): alembic's module is called ``command``, and the
store runs its migrations with it. Nothing else is allowed."""


def engine_files() -> list[Path]:
    return sorted(
        path
        for part in ENGINE
        for path in (SRC / part).rglob("*.py")
        if not any(path.relative_to(SRC).as_posix().startswith(e + "/") for e in EXCLUDED)
    )


def vehicle_words(files: list[Path], root: Path = SRC) -> tuple[list[str], set[tuple[str, str]]]:
    """Each ``file:line: text`` that names a vehicle concept (files named from ``root``),
    and the allowances used."""
    hits: list[str] = []
    used: set[tuple[str, str]] = set()
    for path in files:
        name = path.relative_to(root).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not VEHICLE_WORDS.search(line):
                continue
            if (name, line.strip()) in ALLOWED:
                used.add((name, line.strip()))
                continue
            hits.append(f"src/fleetbatch/{name}:{number}: {line.strip()}")
    return hits, used


def test_the_scan_covers_every_engine_package() -> None:
    files = engine_files()
    for part in ENGINE:
        assert any(f.relative_to(SRC).parts[0] == part for f in files), part
    assert not any("migrations" in f.relative_to(SRC).parts for f in files)
    assert SRC / "store" / "db.py" in files


def test_the_engine_knows_nothing_of_vehicles() -> None:
    hits, used = vehicle_words(engine_files())
    assert hits == [], "vehicle words in engine code:\n" + "\n".join(hits)
    # An allowance that matches nothing any more is removed, not kept as a loophole.
    assert used == ALLOWED


def test_the_words_are_matched_as_words_and_the_allowance_is_narrow(tmp_path: Path) -> None:
    text = (
        "# Every VIN of the file\n"
        "vins = []\n"
        "ok = Consent\n"
        "send(COMMANDS)\n"
        "a_command, command_id, vin_leases, convince, commander\n"
        "from alembic import command\n"
        'command.upgrade(config, "head")\n'
        "from alembic import command  # and more\n"
    )
    for name in ("store/db.py", "store/items.py"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    hits, used = vehicle_words([tmp_path / "store/db.py", tmp_path / "store/items.py"], tmp_path)
    assert hits == [
        "src/fleetbatch/store/db.py:1: # Every VIN of the file",
        "src/fleetbatch/store/db.py:2: vins = []",
        "src/fleetbatch/store/db.py:3: ok = Consent",
        "src/fleetbatch/store/db.py:4: send(COMMANDS)",
        "src/fleetbatch/store/db.py:8: from alembic import command  # and more",
        "src/fleetbatch/store/items.py:1: # Every VIN of the file",
        "src/fleetbatch/store/items.py:2: vins = []",
        "src/fleetbatch/store/items.py:3: ok = Consent",
        "src/fleetbatch/store/items.py:4: send(COMMANDS)",
        "src/fleetbatch/store/items.py:6: from alembic import command",
        'src/fleetbatch/store/items.py:7: command.upgrade(config, "head")',
        "src/fleetbatch/store/items.py:8: from alembic import command  # and more",
    ]
    assert used == ALLOWED
