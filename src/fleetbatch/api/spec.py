"""The OpenAPI spec as committed in ``docs/openapi.json`` (``make openapi`` writes it)."""

from __future__ import annotations

import json

from fleetbatch.api.app import create_app
from fleetbatch.config import Settings


def openapi_json() -> str:
    """The spec of the app as it is now, formatted the way the committed copy is."""
    app = create_app(Settings(environment="development"))
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"
