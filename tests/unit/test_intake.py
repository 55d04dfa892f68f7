"""Streaming CSV / NDJSON intake (rows by a pipeline's key field, file-level errors)
and the pipelines' row rules: the vehicle pipeline's VINs and commands, the
enrichment pipeline's users."""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from fleetbatch.config import Settings
from fleetbatch.errors import FleetbatchError, InputFileError
from fleetbatch.intake import MAX_LINE_BYTES, Accepted, BadRow, RawRow, Rejection, read_rows
from fleetbatch.intake.reader import detect_format
from fleetbatch.pipelines import get_pipeline
from fleetbatch.pipelines.enrich.rows import MAX_USER_ID, validate_users
from fleetbatch.pipelines.vehicle.commands import CommandType, get_command
from fleetbatch.pipelines.vehicle.rows import validate_rows

V1 = "1HGCM82633A004352"
V2 = "1M8GDM9AXKP042788"
V3 = "JH4KA7561PC008269"
LOCK = get_command("lock_doors")


def vin_rows(data: bytes | io.BytesIO, **kwargs: Any) -> Iterator[RawRow | BadRow]:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return read_rows(stream, key_field="vin", **kwargs)


def validate(
    data: bytes, *, filename: str | None = None, command: CommandType = LOCK
) -> list[Accepted | Rejection]:
    return list(validate_rows(vin_rows(data, filename=filename), command))


def accepted(results: Iterable[Accepted | Rejection]) -> list[tuple[int, str]]:
    return [(r.line, r.key) for r in results if isinstance(r, Accepted)]


def rejected(results: Iterable[Accepted | Rejection]) -> list[tuple[int, str, str]]:
    return [(r.line, r.value, r.reason) for r in results if isinstance(r, Rejection)]


def file_error(
    data: bytes,
    *,
    filename: str | None = None,
    max_line_bytes: int | None = None,
    key_field: str = "vin",
) -> str:
    kwargs = {} if max_line_bytes is None else {"max_line_bytes": max_line_bytes}
    with pytest.raises(InputFileError) as caught:
        list(read_rows(io.BytesIO(data), filename=filename, key_field=key_field, **kwargs))
    assert isinstance(caught.value, FleetbatchError)
    return str(caught.value)


# --- CSV ---------------------------------------------------------------------


def test_csv_minimal() -> None:
    results = validate(f"vin\n{V1}\n{V2}\n".encode())
    assert results == [Accepted(2, V1), Accepted(3, V2)]


def test_csv_without_trailing_newline() -> None:
    assert validate(f"vin\n{V1}\n{V2}".encode()) == [Accepted(2, V1), Accepted(3, V2)]


@pytest.mark.parametrize("header", ["VIN", "Vin", "vIN", " vin ", '"VIN"'])
def test_csv_header_is_case_insensitive(header: str) -> None:
    assert validate(f"{header}\n{V1}\n".encode()) == [Accepted(2, V1)]


def test_csv_extra_columns_in_any_order() -> None:
    data = f"owner,plate,VIN,colour\nalice,AB-123,{V1},red\nbob,CD-456,{V2},blue\n"
    assert validate(data.encode()) == [Accepted(2, V1), Accepted(3, V2)]


def test_csv_quoted_fields() -> None:
    data = (
        '"owner","VIN","note"\n'
        f'"Smith, John","{V1}","says ""hi"", twice"\n'
        f'plain,"{V2}",\n'
        f'"x",{V3}  ,"y"\n'
    )
    assert validate(data.encode()) == [Accepted(2, V1), Accepted(3, V2), Accepted(4, V3)]


def test_csv_vin_is_stripped_and_upper_cased() -> None:
    results = validate(f"vin\n  {V1.lower()}  \n\t{V2}\t\n".encode())
    assert results == [Accepted(2, V1), Accepted(3, V2)]


def test_csv_bom() -> None:
    data = b"\xef\xbb\xbf" + f"VIN,owner\n{V1},a\n".encode()
    assert validate(data) == [Accepted(2, V1)]


def test_csv_bom_with_quoted_header() -> None:
    data = b"\xef\xbb\xbf" + f'"vin"\n{V1}\n'.encode()
    assert validate(data) == [Accepted(2, V1)]


def test_csv_crlf() -> None:
    data = f"owner,vin\r\na,{V1}\r\nb,{V2}\r\n".encode()
    assert validate(data) == [Accepted(2, V1), Accepted(3, V2)]


def test_csv_blank_lines_are_skipped_and_lines_are_physical() -> None:
    data = f"\n\nvin\r\n\r\n{V1}\n   \n\t\n{V2}\r\n\n{V3}\n\n".encode()
    assert validate(data) == [Accepted(5, V1), Accepted(8, V2), Accepted(10, V3)]


def test_csv_rejections_keep_line_numbers_and_raw_value() -> None:
    data = (
        "vin\n"
        f"{V1}\n"
        "\n"
        "1HGCM82643A004352\n"  # wrong check digit
        "short\n"
        "1hgcm82633o004352\n"  # letter O
        f"{V2}\n"
    ).encode()
    results = validate(data)
    assert accepted(results) == [(2, V1), (7, V2)]
    assert rejected(results) == [
        (4, "1HGCM82643A004352", "VIN check digit is 4, expected 3"),
        (5, "short", "VIN must be 17 characters, got 5"),
        (6, "1hgcm82633o004352", "VIN contains invalid characters: O"),
    ]
    # Every row comes out, in file order.
    assert [r.line for r in results] == [2, 4, 5, 6, 7]


def test_csv_empty_vin_field() -> None:
    assert rejected(validate(f"owner,vin\nalice,\nbob,{V1}\n".encode())) == [
        (2, "", "VIN must be 17 characters, got 0")
    ]


def test_csv_row_with_too_few_fields() -> None:
    results = validate(f"owner,vin\nalice\nbob,{V1}\n".encode())
    assert rejected(results) == [(2, "alice", "expected 2 fields, got 1")]
    assert accepted(results) == [(3, V1)]


def test_csv_long_value_is_truncated_in_rejection() -> None:
    value = "A" * 500
    [rejection] = validate(f"vin\n{value}\n".encode())
    assert isinstance(rejection, Rejection)
    assert rejection.value == "A" * 100
    assert rejection.reason == "VIN must be 17 characters, got 500"


def test_csv_header_only_is_a_file_error() -> None:
    with pytest.raises(InputFileError) as caught:
        validate(b"vin\n\n")
    assert str(caught.value) == "file has a header but no rows to process"


def test_check_digit_not_required_for_backoffice() -> None:
    wrong = "1HGCM82643A004352"
    assert validate(f"vin\n{wrong}\n".encode(), command=get_command("backoffice_update")) == [
        Accepted(2, wrong)
    ]
    assert rejected(validate(f"vin\n{wrong}\n".encode())) == [
        (2, wrong, "VIN check digit is 4, expected 3")
    ]


# --- command column --------------------------------------------------------------


def test_command_column_matching_or_empty_is_accepted() -> None:
    data = f"vin,command\n{V1},lock_doors\n{V2},\n{V3}\n".encode()
    assert validate(data) == [Accepted(2, V1), Accepted(3, V2), Accepted(4, V3)]


def test_command_column_other_known_command() -> None:
    data = f"VIN,Command\n{V1},unlock_doors\n{V2},lock_doors\n".encode()
    results = validate(data)
    assert rejected(results) == [
        (2, V1, "command 'unlock_doors' does not match the batch's command 'lock_doors'")
    ]
    assert accepted(results) == [(3, V2)]


def test_command_column_unknown_command() -> None:
    results = validate(f"vin,command\n{V1},x\n".encode())
    assert rejected(results) == [(2, V1, "unknown command 'x'")]


def test_command_is_checked_before_vin() -> None:
    results = validate(b"vin,command\nbad,x\n")
    assert rejected(results) == [(2, "bad", "unknown command 'x'")]


# --- NDJSON ------------------------------------------------------------------


@pytest.mark.parametrize("filename", ["cars.ndjson", "CARS.JSONL", "dir/x.jsonl"])
def test_ndjson_detected_by_filename(filename: str) -> None:
    # The first line does not start with '{', so only the name can tell.
    data = f'[1]\n{{"vin": "{V1}"}}\n'.encode()
    results = validate(data, filename=filename)
    assert rejected(results) == [(1, "[1]", "expected a JSON object")]
    assert accepted(results) == [(2, V1)]


@pytest.mark.parametrize("filename", [None, "upload.csv", "upload.txt"])
def test_ndjson_detected_by_first_character(filename: str | None) -> None:
    data = f'  {{"vin": "{V1}", "owner": "a"}}\n{{"vin": "{V2}"}}\n'.encode()
    assert validate(data, filename=filename) == [Accepted(1, V1), Accepted(2, V2)]


def test_detect_format() -> None:
    assert detect_format("a.ndjson", "vin") == "ndjson"
    assert detect_format("a.JSONL", "vin") == "ndjson"
    assert detect_format(None, '{"vin": 1}') == "ndjson"
    assert detect_format("a.csv", ' {"vin": 1}') == "ndjson"
    assert detect_format("a.csv", "vin") == "csv"
    assert detect_format(None, "vin") == "csv"
    assert detect_format("a.json", "vin") == "csv"


def test_ndjson_bom_crlf_blank_lines() -> None:
    data = (
        b"\xef\xbb\xbf" + f'{{"vin": "{V1}"}}\r\n\r\n  \n{{"vin": " {V2.lower()} "}}\r\n'.encode()
    )
    assert validate(data) == [Accepted(1, V1), Accepted(4, V2)]


def test_ndjson_bad_records() -> None:
    data = (
        f'{{"vin": "{V1}"}}\n'
        '{"vin": \n'
        "[1, 2]\n"
        '"just a string"\n'
        '{"VIN": "1HGCM82633A004352"}\n'
        '{"vin": 12345678901234567}\n'
        '{"vin": null}\n'
        f'{{"vin": "{V2}", "command": "lock_doors"}}\n'
    ).encode()
    results = validate(data)
    assert accepted(results) == [(1, V1), (8, V2)]
    bad = rejected(results)
    assert [line for line, _, _ in bad] == [2, 3, 4, 5, 6, 7]
    _, value, reason = bad[0]
    assert value == '{"vin": '
    assert reason.startswith("invalid JSON")
    assert bad[1:] == [
        (3, "[1, 2]", "expected a JSON object"),
        (4, '"just a string"', "expected a JSON object"),
        (5, '{"VIN": "1HGCM82633A004352"}', "no 'vin' string field"),
        (6, '{"vin": 12345678901234567}', "no 'vin' string field"),
        (7, '{"vin": null}', "no 'vin' string field"),
    ]


def test_ndjson_without_the_key_field() -> None:
    data = (
        b'{"user_id": "u-1", "email": "a@example.com"}\n'
        b'{"vin": "1HGCM82633A004352", "email": "b@example.com"}\n'
        b'{"user_id": 7}\n'
    )
    assert list(read_rows(io.BytesIO(data), filename="users.jsonl", key_field="user_id")) == [
        RawRow(1, "u-1", {"user_id": "u-1", "email": "a@example.com"}),
        BadRow(
            2, '{"vin": "1HGCM82633A004352", "email": "b@example.com"}', "no 'user_id' string field"
        ),
        BadRow(3, '{"user_id": 7}', "no 'user_id' string field"),
    ]


def test_ndjson_invalid_json_value_is_truncated() -> None:
    line = "{" + "x" * 300
    [rejection] = validate(line.encode())
    assert isinstance(rejection, Rejection)
    assert rejection.line == 1
    assert rejection.value == line[:100]
    assert rejection.reason.startswith("invalid JSON")


def test_ndjson_command_field() -> None:
    data = (
        f'{{"vin": "{V1}", "command": "lock_doors"}}\n'
        f'{{"vin": "{V2}", "command": "flash_lights"}}\n'
        f'{{"vin": "{V3}", "command": "x"}}\n'
        f'{{"vin": "{V3}", "command": ""}}\n'
    ).encode()
    results = validate(data)
    assert accepted(results) == [(1, V1), (4, V3)]
    assert rejected(results) == [
        (2, V2, "command 'flash_lights' does not match the batch's command 'lock_doors'"),
        (3, V3, "unknown command 'x'"),
    ]


def test_read_rows_raw_records() -> None:
    rows = list(vin_rows(f"VIN,Command\n {V1} ,lock_doors\nx\n".encode()))
    # Every field by its lower-cased name, the key's too; a short row has fewer.
    assert rows == [
        RawRow(2, V1, {"vin": V1, "command": "lock_doors"}),
        RawRow(3, "x", {"vin": "x"}),
    ]
    rows = list(vin_rows(b'{"vin": "abc", "n": 1}\n[]\n'))
    assert rows == [
        RawRow(1, "abc", {"vin": "abc", "n": 1}),
        BadRow(2, "[]", "expected a JSON object"),
    ]


# --- file-level errors -------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"", None),
        (b"", "x.ndjson"),
        (b"\n", None),
        (b"\r\n\n   \n\t\n", None),
        (b"\xef\xbb\xbf", None),
        (b"\xef\xbb\xbf\n\n", None),
    ],
)
def test_empty_file(data: bytes, filename: str | None) -> None:
    assert file_error(data, filename=filename) == "file is empty: no rows to process"


def test_no_vin_column() -> None:
    assert file_error(f"a,b\n{V1},x\n".encode()) == (
        "line 1: no 'vin' column in the header (found: a, b)"
    )


def test_no_vin_column_reports_physical_line() -> None:
    assert file_error(b"\n\nowner, plate\nalice,x\n") == (
        "line 3: no 'vin' column in the header (found: owner, plate)"
    )


def test_no_vin_column_when_first_line_is_data() -> None:
    # A file without a header: its first VIN is taken as the header.
    message = file_error(f"{V1}\n{V2}\n".encode())
    assert message == f"line 1: no 'vin' column in the header (found: {V1.lower()})"


def test_no_vin_column_empty_header_names() -> None:
    assert file_error(b",,\nx\n") == "line 1: no 'vin' column in the header (found: nothing)"


def test_the_key_column_is_the_pipelines_key_field() -> None:
    # An enrichment file names its key user_id: a vehicle file's header is not one.
    assert file_error(f"vin,email\n{V1},a@example.com\n".encode(), key_field="user_id") == (
        "line 1: no 'user_id' column in the header (found: vin, email)"
    )
    assert file_error(b"\nEmail,Country\na@example.com,DE\n", key_field="user_id") == (
        "line 2: no 'user_id' column in the header (found: email, country)"
    )


def test_read_rows_by_another_key_field() -> None:
    data = b"Email,USER_ID,country\na@example.com, u-1 ,de\nb@example.com\n"
    assert list(read_rows(io.BytesIO(data), key_field="user_id")) == [
        RawRow(2, "u-1", {"email": "a@example.com", "user_id": "u-1", "country": "de"}),
        BadRow(3, "b@example.com", "expected 3 fields, got 1"),
    ]


def test_not_utf8() -> None:
    data = f"vin\n{V1}\n\n".encode() + b"ab\xffcd\n" + f"{V2}\n".encode()
    assert file_error(data) == "line 4: not valid UTF-8 (byte 0xff at offset 2)"


def test_not_utf8_truncated_sequence_and_latin1() -> None:
    assert file_error(b"vin\ncaf\xe9\n") == "line 2: not valid UTF-8 (byte 0xe9 at offset 3)"
    assert file_error(b"\xff\xfev\x00i\x00n\x00\n") == (
        "line 1: not valid UTF-8 (byte 0xff at offset 0)"
    )


def test_not_utf8_in_ndjson() -> None:
    data = f'{{"vin": "{V1}"}}\n'.encode() + b'{"vin": "\x80"}\n'
    assert file_error(data) == "line 2: not valid UTF-8 (byte 0x80 at offset 9)"


def test_valid_multibyte_utf8_is_fine() -> None:
    data = f"owner,vin\nJosé Müller 日本,{V1}\n".encode()
    assert validate(data) == [Accepted(2, V1)]


def test_error_is_raised_lazily_after_earlier_rows() -> None:
    data = f"vin\n{V1}\n{V2}\n".encode() + b"\xff\n"
    rows = vin_rows(data)
    assert next(rows) == RawRow(2, V1, {"vin": V1})
    assert next(rows) == RawRow(3, V2, {"vin": V2})
    with pytest.raises(InputFileError, match=r"^line 4: not valid UTF-8"):
        next(rows)


def test_line_longer_than_limit_10mb() -> None:
    assert MAX_LINE_BYTES == 65536
    stream = io.BytesIO(f"vin\n{V1}\n".encode() + b"A" * 10_000_000 + f"\n{V2}\n".encode())
    started = time.perf_counter()
    with pytest.raises(InputFileError) as caught:
        list(vin_rows(stream))
    assert str(caught.value) == "line 3: longer than 65536 bytes"
    # It stopped at the limit instead of reading the whole line.
    assert stream.tell() < 2 * MAX_LINE_BYTES
    assert time.perf_counter() - started < 5


def test_line_longer_than_limit_ndjson() -> None:
    data = b'{"vin": "' + b"A" * 100_000 + b'"}\n'
    assert file_error(data, filename="x.ndjson") == "line 1: longer than 65536 bytes"


def test_line_limit_boundary() -> None:
    # Exactly the limit (without the newline) is fine; one byte more is not.
    at_limit = b"vin\n" + b"A" * 10 + b"\n"
    [rejection] = list(validate_rows(vin_rows(at_limit, max_line_bytes=10), LOCK))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "VIN must be 17 characters, got 10"
    last_line_at_limit = b"vin\n" + b"A" * 10
    assert len(list(vin_rows(last_line_at_limit, max_line_bytes=10))) == 1

    assert file_error(b"vin\n" + b"A" * 11 + b"\n", max_line_bytes=10) == (
        "line 2: longer than 10 bytes"
    )
    assert file_error(b"vin\n" + b"A" * 11, max_line_bytes=10) == "line 2: longer than 10 bytes"


def test_row_at_default_limit_is_read() -> None:
    line = b"A" * MAX_LINE_BYTES
    rows = list(vin_rows(b"vin\n" + line + b"\n"))
    assert rows == [RawRow(2, line.decode(), {"vin": line.decode()})]


# --- laziness ----------------------------------------------------------------


class CountingStream(io.BytesIO):
    """A BytesIO that counts the bytes handed out."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        chunk = super().readline(size)
        self.bytes_read += len(chunk)
        return chunk


def test_read_rows_is_lazy_over_a_million_rows() -> None:
    rows = 1_000_000
    data = b"vin,seq\n" + b"".join(f"{V1},{i:07d}\n".encode() for i in range(rows))
    stream = CountingStream(data)
    results = validate_rows(vin_rows(stream, filename="big.csv"), LOCK)
    first = list(itertools.islice(results, 10))
    assert first == [Accepted(line, V1) for line in range(2, 12)]
    assert stream.bytes_read < 1_000
    assert stream.bytes_read < len(data) // 10_000


def test_read_rows_does_not_touch_the_stream_until_iterated() -> None:
    stream = CountingStream(b"vin\n" + f"{V1}\n".encode())
    rows = vin_rows(stream)
    assert stream.bytes_read == 0
    assert list(rows) == [RawRow(2, V1, {"vin": V1})]


# --- the pipelines' row rules --------------------------------------------------------


def test_the_vehicle_pipeline_validates_with_its_command() -> None:
    vehicle = get_pipeline("vehicle")
    assert vehicle.key_field == "vin"
    data = f"vin,command\n{V1.lower()}\n{V2},unlock_doors\nshort\n".encode()
    options = {"command": "lock_doors"}
    results = list(vehicle.validate(vin_rows(data), options, Settings()))
    assert results == [
        Accepted(2, V1),
        Rejection(3, V2, "command 'unlock_doors' does not match the batch's command 'lock_doors'"),
        Rejection(4, "short", "VIN must be 17 characters, got 5"),
    ]


def users(data: bytes, *, filename: str | None = None) -> list[Accepted | Rejection]:
    rows = read_rows(io.BytesIO(data), filename=filename, key_field="user_id")
    return list(validate_users(rows))


def test_users_valid_rows_carry_email_and_country() -> None:
    data = b"user_id,email,country,name\nu-1, a@example.com ,de,Ann\nu-2,b.c@mail.example.org,FR,\n"
    # Only what the step needs goes into the payload; countries are upper-cased.
    assert users(data) == [
        Accepted(2, "u-1", {"email": "a@example.com", "country": "DE"}),
        Accepted(3, "u-2", {"email": "b.c@mail.example.org", "country": "FR"}),
    ]


def test_users_from_ndjson_are_stripped() -> None:
    data = b'{"user_id": " u-9 ", "email": " x@y.io ", "country": "nl", "extra": [1]}\n'
    assert users(data, filename="users.ndjson") == [
        Accepted(1, "u-9", {"email": "x@y.io", "country": "NL"})
    ]


def test_users_rejections_have_exact_reasons() -> None:
    long_id = "u" * (MAX_USER_ID + 1)
    data = (
        "user_id,email,country\n"
        ",a@example.com,DE\n"  # no user id: the email names the row
        "u-2,,DE\n"
        "u-3,not-an-email,DE\n"
        "u-4,two@at@example.com,DE\n"
        "u-5,spaced out@example.com,DE\n"
        "u-6,a@example,DE\n"
        "u-7,a@example.com,Germany\n"
        "u-8,a@example.com,\n"
        "u-9,a@example.com,D1\n"
        f"{long_id},a@example.com,DE\n"
        "u-11\n"
        "u-12,ok@example.com,de\n"
    ).encode()
    results = users(data)
    assert rejected(results) == [
        (2, "a@example.com", "missing user_id"),
        (3, "u-2", "missing email"),
        (4, "u-3", "invalid email 'not-an-email'"),
        (5, "u-4", "invalid email 'two@at@example.com'"),
        (6, "u-5", "invalid email 'spaced out@example.com'"),
        (7, "u-6", "invalid email 'a@example'"),
        (8, "u-7", "invalid country 'Germany': expected a two-letter ISO 3166 code"),
        (9, "u-8", "invalid country '': expected a two-letter ISO 3166 code"),
        (10, "u-9", "invalid country 'D1': expected a two-letter ISO 3166 code"),
        (11, long_id[:100], f"user_id longer than {MAX_USER_ID} characters"),
        (12, "u-11", "missing email"),
    ]
    assert results[-1] == Accepted(13, "u-12", {"email": "ok@example.com", "country": "DE"})
    assert [r.line for r in results] == list(range(2, 14))


def test_users_unparsable_rows_are_rejections() -> None:
    data = b'{"user_id": "u-1", "email": "a@example.com", "country": "se"}\n{"email": \n[1]\n'
    results = users(data, filename="users.jsonl")
    assert results[0] == Accepted(1, "u-1", {"email": "a@example.com", "country": "SE"})
    bad = rejected(results)
    assert [line for line, _, _ in bad] == [2, 3]
    assert bad[0][1] == '{"email": '
    assert bad[0][2].startswith("invalid JSON")
    assert bad[1] == (3, "[1]", "expected a JSON object")


def test_the_enrich_pipeline_validates_users() -> None:
    enrich = get_pipeline("enrich")
    assert enrich.key_field == "user_id"
    data = b"user_id,email,country\nu-1,a@example.com,us\nu-2,nope,us\n"
    rows = read_rows(io.BytesIO(data), key_field=enrich.key_field)
    assert list(enrich.validate(rows, {"format": "jsonl"}, Settings())) == [
        Accepted(2, "u-1", {"email": "a@example.com", "country": "US"}),
        Rejection(3, "u-2", "invalid email 'nope'"),
    ]
