"""Connection, the embedded dev server, search attributes, the worker."""

from fleetbatch.temporal.connect import connect, ensure_search_attributes
from fleetbatch.temporal.devserver import DevServer
from fleetbatch.temporal.worker import build_worker

__all__ = ["DevServer", "build_worker", "connect", "ensure_search_attributes"]
