"""The demo's generated input: valid VINs plus the kinds of bad rows operators send."""

from __future__ import annotations

from pathlib import Path

from fleetbatch.domain.vin import make_vin

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
