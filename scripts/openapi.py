"""Write the API's OpenAPI spec to docs/openapi.json (``make openapi``)."""

from __future__ import annotations

from pathlib import Path

from fleetbatch.api.spec import openapi_json

TARGET = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"

if __name__ == "__main__":
    TARGET.write_text(openapi_json())
    print(f"wrote {TARGET}")
