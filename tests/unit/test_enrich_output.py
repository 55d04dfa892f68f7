"""Chunk result files: idempotent names, atomic replacement, JSONL and CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from fleetbatch.pipelines.enrich.output import (
    OutputFile,
    chunk_file_name,
    list_output_files,
    output_dir,
    write_chunk_file,
)

NAME = "b1-items-000000000001-000000000500.jsonl"


def test_chunk_file_name_is_made_of_the_batch_and_the_item_range() -> None:
    assert chunk_file_name("b1", 1, 500, "jsonl") == NAME
    assert chunk_file_name("b1", 1, 500, "jsonl") == NAME
    assert chunk_file_name("b1", 0, 0, "csv") == "b1-items-000000000000-000000000000.csv"
    with pytest.raises(ValueError, match="item range"):
        chunk_file_name("b1", 10, 9, "jsonl")
    with pytest.raises(ValueError, match="item range"):
        chunk_file_name("b1", -1, 9, "jsonl")


@pytest.mark.parametrize("batch_id", ["", ".", "..", "a/b", "../x", "a\\b", "x..y", "/abs"])
def test_bad_batch_ids_are_rejected(tmp_path: Path, batch_id: str) -> None:
    with pytest.raises(ValueError, match="batch id"):
        output_dir(tmp_path, batch_id)
    with pytest.raises(ValueError, match="batch id"):
        chunk_file_name(batch_id, 1, 2, "jsonl")
    with pytest.raises(ValueError, match="batch id"):
        write_chunk_file(tmp_path, batch_id, 1, 2, [{"a": 1}])
    assert list(tmp_path.iterdir()) == []


def test_output_dir(tmp_path: Path) -> None:
    assert output_dir(tmp_path, "batch-7.v2") == tmp_path / "output" / "batch-7.v2"


def test_a_rewritten_chunk_replaces_its_file(tmp_path: Path) -> None:
    directory = output_dir(tmp_path, "b1")
    first = write_chunk_file(directory, "b1", 1, 500, [{"user_id": "u1", "n": 1}])
    second = write_chunk_file(directory, "b1", 1, 500, [{"user_id": "u1", "n": 2}, {"n": 3}])
    assert first == second == directory / NAME
    # One file, the second run's, and no temporary file left beside it.
    assert [p.name for p in directory.iterdir()] == [NAME]
    lines = second.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"user_id": "u1", "n": 2}, {"n": 3}]


def test_jsonl_keeps_unicode_and_types(tmp_path: Path) -> None:
    records = [{"name": "Zoë", "enriched": False, "score": 7, "tags": ["a"], "none": None}]
    path = write_chunk_file(tmp_path, "b1", 1, 1, records)
    text = path.read_text(encoding="utf-8")
    assert "Zoë" in text
    assert text.endswith("\n")
    assert [json.loads(line) for line in text.splitlines()] == records


def test_csv_header_is_the_union_of_keys_in_first_seen_order(tmp_path: Path) -> None:
    records = [
        {"user_id": "u1", "region": "EU", "enriched": True},
        {"user_id": "u2", "enriched": False, "reason": "rate limited (429) after 3 attempts"},
        {"region": "NA", "user_id": "u3", "extra": {"k": [1, 2]}},
    ]
    path = write_chunk_file(tmp_path, "b1", 1, 3, records, fmt="csv")
    assert path.name == "b1-items-000000000001-000000000003.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert rows == [
        ["user_id", "region", "enriched", "reason", "extra"],
        ["u1", "EU", "True", "", ""],
        ["u2", "", "False", "rate limited (429) after 3 attempts", ""],
        ["u3", "NA", "", "", '{"k": [1, 2]}'],
    ]


def test_no_records(tmp_path: Path) -> None:
    jsonl = write_chunk_file(tmp_path, "b1", 1, 2, [])
    csv_path = write_chunk_file(tmp_path, "b1", 1, 2, [], fmt="csv")
    assert (jsonl.read_bytes(), csv_path.read_bytes()) == (b"", b"")


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    path = write_chunk_file(tmp_path, "b1", 1, 500, [{"n": 1}])
    with pytest.raises(TypeError):
        write_chunk_file(tmp_path, "b1", 1, 500, [{"n": 2}, {"n": object()}])
    assert [p.name for p in tmp_path.iterdir()] == [NAME]
    assert json.loads(path.read_text(encoding="utf-8")) == {"n": 1}


def test_list_output_files_sorted_without_temporaries(tmp_path: Path) -> None:
    directory = output_dir(tmp_path, "b1")
    assert list_output_files(directory) == []
    later = write_chunk_file(directory, "b1", 501, 1000, [{"n": 2}])
    earlier = write_chunk_file(directory, "b1", 1, 500, [{"n": 1}], fmt="csv")
    (directory / f".{NAME}.abc123.tmp").write_text("half a file")
    (directory / "subdir").mkdir()
    assert list_output_files(directory) == [
        OutputFile(earlier.name, earlier.stat().st_size, earlier),
        OutputFile(later.name, later.stat().st_size, later),
    ]
    assert [f.size for f in list_output_files(directory)] == [len("n\r\n1\r\n"), len('{"n":2}\n')]
