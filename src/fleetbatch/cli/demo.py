"""The demo's generated inputs: valid rows plus the kinds of bad rows operators send."""

from __future__ import annotations

from pathlib import Path

from fleetbatch.pipelines.vehicle.vin import make_vin

BAD_ROWS = ["NOT-A-VIN", "1HGCM82633A00435", "1HGCM82633A00435Q", "1HGCM82643A004352"]


def demo_file(path: Path, items: int) -> Path:
    """Write ``items`` valid VINs, a duplicate and a few invalid rows as CSV."""
    with path.open("w") as out:
        out.write("vin,note\n")
        for i in range(items):
            out.write(f"{make_vin(i)},fleet-demo\n")
            if i == items // 2:
                out.write(f"{make_vin(0)},duplicate\n")
                for bad in BAD_ROWS:
                    out.write(f"{bad},bad\n")
    return path


BAD_USERS = [
    ",nobody@example.com,DE",
    "u-bad-email,not-an-email,DE",
    "u-bad-country,x@example.com,Germany",
]
COUNTRIES = ("DE", "FR", "US", "BR", "JP", "IN", "ZA", "GB", "CA", "AU")


def demo_users_file(path: Path, items: int) -> Path:
    """Write ``items`` users for the enrichment pipeline, a duplicate and a few bad rows."""
    with path.open("w") as out:
        out.write("user_id,email,country\n")
        for i in range(items):
            out.write(f"u{i:07d},user{i}@example.com,{COUNTRIES[i % len(COUNTRIES)]}\n")
            if i == items // 2:
                out.write("u0000000,again@example.com,DE\n")
                for bad in BAD_USERS:
                    out.write(f"{bad}\n")
    return path
