"""The Grafana dashboard and the Prometheus alert rules in deploy/: well formed,
and every metric they name is one a worker exports after a batch."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from test_metrics import scrape

from external import free_port, unavailable
from fleetbatch.bus import CommandMessage
from fleetbatch.pipelines.vehicle.simulators import Decision
from fleetbatch.telemetry import metrics_runtime
from fleetbatch.temporal import DevServer
from support import harness, vins

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "fleetbatch.json"
RULES = DEPLOY / "prometheus" / "fleetbatch-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "fleetbatch-alerts.test.yml"
METRIC = re.compile(r"\b(?:fleetbatch|temporal)_[a-z0-9_]+\b")


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: the panels' targets and the query variables'."""
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append(variable["query"]["query"])
    return found


def exported(text: str) -> set[str]:
    """Names of the samples an endpoint serves (histograms as _bucket/_sum/_count)."""
    return set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.MULTILINE))


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert {"x", "y", "w", "h"} <= grid.keys(), panel["title"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert METRIC.search(target["expr"]), target["expr"]
    # No two panels overlap on the grid.
    cells = [
        (x, y)
        for p in panels
        for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
        for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])
    ]
    assert len(cells) == len(set(cells))
    exprs = " ".join(queries(dashboard))
    for needed in (
        "histogram_quantile",
        "temporal_activity_schedule_to_start_latency_bucket",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
        "fleetbatch_breaker_state",
        "fleetbatch_republishes_total",
    ):
        assert needed in exprs


async def test_dashboard_and_rules_name_exported_metrics(
    dev_server: DevServer, tmp_path: Path
) -> None:
    """A batch with failures, consent denials and a re-publish: every metric the
    dashboard and the alert rules query is on the worker's endpoint."""
    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(dev_server.address, runtime=metrics_runtime(address))
    batch = vins(40)

    def decide(message: CommandMessage) -> Decision:
        if message.vin == batch[0] and message.attempt == 1:
            return Decision.DROP  # answered on the re-publish
        return Decision.SUCCEED if message.vin != batch[1] else Decision.FAIL

    async with harness(
        client,
        tmp_path,
        chunk_size=10,
        decide=decide,
        denied_vins=batch[2:4],
        response_timeout_seconds=1,
    ) as h:
        upload = await h.submit(batch, command="flash_lights")
        await h.result(upload.batch_id)
        text = scrape(address)

    names = exported(text)
    dashboard = json.loads(DASHBOARD.read_text())
    used = {m for expr in queries(dashboard) for m in METRIC.findall(expr)}
    used |= set(METRIC.findall(RULES.read_text()))
    assert used - names == set()
    assert "fleetbatch_republishes_total" in used


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        unavailable("promtool is not installed (Debian package prometheus)")
    return path


def test_alert_rules_pass_promtool() -> None:
    checked = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout


def test_alert_rules_unit_tests() -> None:
    tested = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_annotations_and_a_runbook_in_the_docs() -> None:
    text = RULES.read_text()
    docs = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text()
    alerts = re.findall(r"- alert: (\w+)", text)
    assert alerts == [
        "FleetbatchBreakerOpen",
        "FleetbatchFailureShareHigh",
        "FleetbatchNoProgress",
        "FleetbatchDeadLettersGrowing",
    ]
    assert text.count("summary:") == text.count("description:") == len(alerts)
    for alert in alerts:
        assert f"runbook_url: docs/metrics.md#{alert.lower()}" in text
        assert f"### {alert}" in docs  # the anchor the runbook link points at
