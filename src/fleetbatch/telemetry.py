"""Metrics endpoint and structured logs for a fleetbatch process."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from fleetbatch.config import Settings
from fleetbatch.keys import KeyHasher
from fleetbatch.metrics import SECONDS_BUCKETS

# Extra attributes worth keeping in a JSON line, when a record carries them.
CONTEXT_KEYS = (
    "batch_id",
    "vin",
    "item_key",
    "key_hash",
    "command_id",
    "workflow_id",
    "item_id",
    "command",
)
ITEM_KEY_FIELDS = ("vin", "item_key")
"""The extra attributes that carry an item's key: a log call names an item with one
of these (and ``item_id``), never in its message, so ``ItemKeyFilter`` can replace it."""


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime that serves SDK and fleetbatch metrics at ``bind_address``.

    Clients connected with this runtime (and their workers) report through it.
    """
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                durations_as_seconds=True,
                histogram_bucket_overrides=SECONDS_BUCKETS,
            )
        )
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any context keys."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            if (value := record.__dict__.get(key)) is not None:
                line[key] = value
        # Temporal's workflow and activity loggers attach their context as a dict.
        for key in ("temporal_workflow", "temporal_activity"):
            if isinstance(context := record.__dict__.get(key), dict):
                line[key] = context
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class ItemKeyFilter(logging.Filter):
    """Names items by id and keyed hash: takes every ``ITEM_KEY_FIELDS`` attribute out
    of a record and puts the key's ``key_hash`` in (none without a hasher)."""

    def __init__(self, hasher: KeyHasher | None) -> None:
        super().__init__()
        self._hasher = hasher

    def filter(self, record: logging.LogRecord) -> bool:
        for field in ITEM_KEY_FIELDS:
            key = record.__dict__.pop(field, None)
            if key is not None and self._hasher is not None:
                record.key_hash = self._hasher.hash(str(key))
        return True


_key_filter: ItemKeyFilter | None = None


def protect_logged_keys(settings: Settings) -> None:
    """Log item keys only as the settings allow: in clear in development (unless
    ``log_plain_keys`` is off), else by keyed hash, on every handler of the root
    logger, now and after ``setup_logging``."""
    global _key_filter
    root = logging.getLogger()
    for handler in root.handlers:
        if _key_filter is not None:
            handler.removeFilter(_key_filter)
    _key_filter = None if settings.plain_keys_in_logs else ItemKeyFilter(settings.key_hasher)
    if _key_filter is not None:
        for handler in root.handlers:
            handler.addFilter(_key_filter)


def setup_logging(level: int = logging.INFO, *, json_lines: bool | None = None) -> None:
    """Log to stderr: JSON lines when stderr is not a terminal, readable text when it is."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    if _key_filter is not None:
        handler.addFilter(_key_filter)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Temporal's own chatter and alembic's migration notes stay at warnings;
    # fleetbatch's workflow and activity logs go through Temporal's loggers.
    for noisy in ("temporalio", "alembic"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    for ours in ("temporalio.workflow", "temporalio.activity"):
        logging.getLogger(ours).setLevel(level)
