"""Structured log lines carry the item context."""

from __future__ import annotations

import json
import logging

from fleetbatch.telemetry import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    logger = logging.getLogger("fleetbatch.test")
    return logger.makeRecord(
        "fleetbatch.test",
        logging.WARNING,
        __file__,
        1,
        "item failed: %s",
        ("late",),
        None,
        extra=extra,
    )


def test_json_line_carries_item_context() -> None:
    line = json.loads(
        JsonFormatter().format(
            record(
                batch_id="b1",
                vin="1FBTCMD74RA000000",
                command_id="c-1",
                temporal_workflow={"workflow_id": "w"},
            )
        )
    )
    assert line["message"] == "item failed: late"
    assert line["level"] == "warning"
    assert (line["batch_id"], line["vin"], line["command_id"]) == ("b1", "1FBTCMD74RA000000", "c-1")
    assert line["temporal_workflow"] == {"workflow_id": "w"}


def test_json_line_leaves_out_absent_context() -> None:
    line = json.loads(JsonFormatter().format(record()))
    assert set(line) == {"time", "level", "logger", "message"}
