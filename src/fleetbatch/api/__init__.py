"""The HTTP face: a JSON API with an OpenAPI spec, and a small server-rendered web UI."""

from fleetbatch.api.app import create_app

__all__ = ["create_app"]
