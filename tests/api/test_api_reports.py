"""CSV downloads: item and rejection reports, safe against spreadsheet formulas."""

from __future__ import annotations

import csv
import io

import pytest

from api_support import Api, api_vins
from fleetbatch.services.reports import ITEM_FIELDS, safe_cell


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("1FBTCMD74RA000000", "1FBTCMD74RA000000"),
        ("a=b", "a=b"),
        ("", ""),
        (-3, -3),
        (None, None),
    ],
)
def test_safe_cell(value: object, safe: object) -> None:
    assert safe_cell(value) == safe


async def test_item_report(api: Api) -> None:
    rows = api_vins(4)
    assert (await api.upload(rows, batch_id="b-rep")).status_code == 201
    await api.h.result("b-rep")
    response = await api.get("/api/batches/b-rep/report.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="b-rep-report.csv"'
    reader = csv.DictReader(io.StringIO(response.text))
    assert reader.fieldnames == ITEM_FIELDS
    got = list(reader)
    assert reader.fieldnames == [
        "key",
        "status",
        "attempts",
        "effect_id",
        "error",
        "result",
        "line",
        "updated_at",
    ]
    assert [(r["key"], r["status"], r["line"]) for r in got] == [
        (v, "succeeded", str(n + 2)) for n, v in enumerate(rows)
    ]


async def test_rejection_report_defuses_formulas(api: Api) -> None:
    data = b'vin\n=HYPERLINK("http://x")\n+1\n-2\n@SUM(A1)\n' + api_vins(1)[0].encode() + b"\n"
    response = await api.upload(data, batch_id="b-rej")
    assert response.status_code == 201, response.text
    await api.h.result("b-rej")
    report = await api.get("/api/batches/b-rej/rejections.csv")
    assert report.status_code == 200
    assert report.headers["content-disposition"] == 'attachment; filename="b-rej-rejections.csv"'
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert [(r["line"], r["value"]) for r in rows] == [
        ("2", '\'=HYPERLINK("http://x")'),
        ("3", "'+1"),
        ("4", "'-2"),
        ("5", "'@SUM(A1)"),
    ]
    assert all(r["reason"].startswith("VIN must be 17 characters") for r in rows)
