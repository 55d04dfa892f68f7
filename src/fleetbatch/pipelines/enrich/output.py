"""Result files: one per chunk, named after the batch and the chunk's item range.

A chunk's activity may run more than once (a retry after a crash or a timeout). Its file is
therefore named from what does not change between runs, the batch id and the ids of the
chunk's first and last items, never a timestamp; and it is written to a temporary file then
renamed over the final name, so a rerun replaces the file whole and a reader never sees half
of one.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal

OutputFormat = Literal["jsonl", "csv"]

_EXTENSIONS: Final[dict[str, str]] = {"jsonl": "jsonl", "csv": "csv"}
# Temporary files start with a dot and end with this suffix: hidden from a plain `ls`, never
# mistaken for a result, and on the same file system as the result so the rename is atomic.
_TEMP_PREFIX: Final = "."
_TEMP_SUFFIX: Final = ".tmp"


@dataclass(frozen=True)
class OutputFile:
    """A result file of a batch."""

    name: str
    size: int
    """Bytes."""
    path: Path


def _check_batch_id(batch_id: str) -> None:
    # The id becomes a directory and a file name: a separator or ".." would write elsewhere.
    separators = {"/", "\\", os.sep, os.altsep or "/"}
    if (
        not batch_id
        or batch_id in {".", ".."}
        or ".." in batch_id
        or "\0" in batch_id
        or any(sep in batch_id for sep in separators)
    ):
        raise ValueError(f"unusable batch id for a path: {batch_id!r}")


def output_dir(data_dir: Path, batch_id: str) -> Path:
    """The directory of a batch's result files, ``data_dir / "output" / batch_id``.

    Raises:
        ValueError: ``batch_id`` is empty or contains a path separator or ``..``.
    """
    _check_batch_id(batch_id)
    return data_dir / "output" / batch_id


def chunk_file_name(batch_id: str, first_id: int, last_id: int, fmt: OutputFormat) -> str:
    """The file name of a chunk's results, e.g. ``b1-items-000000000001-000000000500.jsonl``.

    Zero-padded so that names sort in item order.

    Raises:
        ValueError: a bad batch id, a negative or reversed item range, or an unknown format.
    """
    _check_batch_id(batch_id)
    if first_id < 0 or last_id < first_id:
        raise ValueError(f"bad item range {first_id}..{last_id}")
    if fmt not in _EXTENSIONS:
        raise ValueError(f"unknown output format {fmt!r}")
    return f"{batch_id}-items-{first_id:012d}-{last_id:012d}.{_EXTENSIONS[fmt]}"


def write_chunk_file(
    directory: Path,
    batch_id: str,
    first_id: int,
    last_id: int,
    records: Sequence[dict[str, Any]],
    fmt: OutputFormat = "jsonl",
) -> Path:
    """Write a chunk's records to their file, replacing a previous run's; returns its path.

    JSONL is one JSON object per line. CSV has a header of every key of the records, in the
    order first seen, and an empty cell where a record lacks a key; a list or dict value is
    written as JSON.

    Raises:
        ValueError: as :func:`chunk_file_name`.
        TypeError: a JSONL value JSON cannot encode (nothing is left behind then: the previous
            file, if any, stays as it was).
        OSError: the directory or the file could not be written.
    """
    name = chunk_file_name(batch_id, first_id, last_id, fmt)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    # A unique temporary name: two runs of the same chunk at once (a retry while the first
    # attempt still runs) each write their own file, and the last rename wins whole.
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, before the rename
        mode="w",
        encoding="utf-8",
        newline="",
        dir=directory,
        prefix=f"{_TEMP_PREFIX}{name}.",
        suffix=_TEMP_SUFFIX,
        delete=False,
    )
    try:
        with tmp:
            if fmt == "csv":
                _write_csv(tmp, records)
            else:
                _write_jsonl(tmp, records)
            tmp.flush()
            # On disk before the rename: after a crash the final name holds either the old
            # file or the whole new one, never an empty or partial file.
            os.fsync(tmp.fileno())
        # mkstemp makes the file 0600; a result file is as readable as any other the
        # process writes (its umask decides).
        os.chmod(tmp.name, 0o666 & ~_umask())
        os.replace(tmp.name, final)
        # A worker killed mid-write leaves its temporary file: the chunk's file is
        # whole now, so those go.
        for stale in directory.glob(f"{_TEMP_PREFIX}{name}.*{_TEMP_SUFFIX}"):
            stale.unlink(missing_ok=True)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    return final


def _write_jsonl(out: IO[str], records: Sequence[dict[str, Any]]) -> None:
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")


def _write_csv(out: IO[str], records: Sequence[dict[str, Any]]) -> None:
    # dict.fromkeys keeps the first-seen order of the union of keys.
    header = list(dict.fromkeys(key for record in records for key in record))
    if not header:
        return
    writer = csv.DictWriter(out, fieldnames=header, restval="")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {
                key: json.dumps(value, ensure_ascii=False)
                if isinstance(value, (dict, list))
                else value
                for key, value in record.items()
            }
        )


def _fsync_dir(directory: Path) -> None:
    # The rename itself is durable only once the directory is synced (POSIX); Windows cannot
    # open a directory for that and its rename is already as durable as it gets.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_output_files(directory: Path) -> list[OutputFile]:
    """The result files of ``directory``, sorted by name; temporary files are left out.

    A directory that does not exist (no chunk written yet) has none.
    """
    if not directory.is_dir():
        return []
    files = []
    for entry in directory.iterdir():
        if entry.name.startswith(_TEMP_PREFIX) or entry.name.endswith(_TEMP_SUFFIX):
            continue
        if entry.is_file():
            files.append(OutputFile(entry.name, entry.stat().st_size, entry))
    return sorted(files, key=lambda f: f.name)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
