"""Metrics endpoint and structured logs for a fleetbatch process."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from fleetbatch.metrics import SECONDS_BUCKETS

# Extra attributes worth keeping in a JSON line, when a record carries them.
CONTEXT_KEYS = ("batch_id", "vin", "command_id", "workflow_id", "item_id", "command")


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


def setup_logging(level: int = logging.INFO, *, json_lines: bool | None = None) -> None:
    """Log to stderr: JSON lines when stderr is not a terminal, readable text when it is."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
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
