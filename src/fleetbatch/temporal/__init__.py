"""Connection, the embedded dev server, search attributes, the worker."""

from fleetbatch.temporal.connect import connect, ensure_search_attributes
from fleetbatch.temporal.devserver import DevServer
from fleetbatch.temporal.worker import build_workers

__all__ = ["DevServer", "build_workers", "connect", "ensure_search_attributes"]
