"""The billable-action counter (``fleetbatch_bench.actions``) on histories counted by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from fleetbatch_bench.actions import (
    LIST_PRICE_PER_MILLION_ACTIONS,
    ActionCounts,
    cost_per_million_items,
    count_actions,
    history_actions,
)

HISTORIES = Path(__file__).parent / "histories"


def _recorded() -> list[WorkflowHistory]:
    document = json.loads((HISTORIES / "bench_chunk5.json").read_text())
    return [WorkflowHistory.from_json(h["workflow_id"], h["history"]) for h in document]


def test_a_recorded_batch_and_chunk_count_as_counted_by_hand() -> None:
    """Recorded from ``fleetbatch bench`` (10 VINs, chunk size 5, 2 in flight): the
    batch workflow and the first of its two chunk workflows."""
    batch, chunk = _recorded()

    # The batch workflow (46 events):
    #   1 WORKFLOW_EXECUTION_STARTED, 2 WORKFLOW_EXECUTION_SIGNALED file_added: one
    #     signal-with-start                                          → started 1
    #   6, 23 ACTIVITY_TASK_SCHEDULED items.next_chunks, 40 … items.finish_batch
    #     (attempt 1 each at 7, 29, 41: no retry)                      → activity 3
    #   12, 13 START_CHILD_WORKFLOW_EXECUTION_INITIATED (2 each)       → child 4
    #   19, 24 WORKFLOW_EXECUTION_SIGNALED chunk_done                  → signal 2
    #   35 TIMER_STARTED (the idle wait for late files)                → timer 1
    #   workflow tasks, CHILD_…_STARTED/COMPLETED, ACTIVITY_…_COMPLETED: 0
    assert history_actions(batch.events) == {
        "workflow_started": 1,
        "activity": 3,
        "child_workflow_started": 4,
        "signal": 2,
        "timer": 1,
    }
    # A chunk workflow (14 events):
    #   1 WORKFLOW_EXECUTION_STARTED with a parent: counted in the parent   → 0
    #   5 MARKER_RECORDED (local activity, workflow task 4)       → local activity 1
    #   6 UPSERT_WORKFLOW_SEARCH_ATTRIBUTES FleetbatchKeys        → search attributes 1
    #   7 TIMER_STARTED (the response timeout; 12 cancels it)     → timer 1
    #   8 WORKFLOW_EXECUTION_SIGNALED responses                   → signal 1
    #   13 MARKER_RECORDED (local activity, workflow task 11)     → local activity 1
    assert history_actions(chunk.events) == {
        "local_activity": 2,
        "search_attributes": 1,
        "timer": 1,
        "signal": 1,
    }
    counts = count_actions([batch, chunk])
    assert counts.histories == 2
    assert counts.total == 11 + 5


def _history(*events: tuple[str, dict[str, object]]) -> list[HistoryEvent]:
    """Events of the given types and attributes, numbered from 1."""
    return [
        json_format.ParseDict(
            {"eventId": str(n), "eventType": f"EVENT_TYPE_{kind}", **attributes}, HistoryEvent()
        )
        for n, (kind, attributes) in enumerate(events, 1)
    ]


def test_retries_continue_as_new_markers_heartbeats_and_exempt_upserts() -> None:
    task = {"WORKFLOW_TASK_SCHEDULED": {}, "WORKFLOW_TASK_STARTED": {}}
    events = _history(
        # 1: a new run of a continued-as-new workflow (a child's: it keeps its parent) → 1
        (
            "WORKFLOW_EXECUTION_STARTED",
            {
                "workflowExecutionStartedEventAttributes": {
                    "continuedExecutionRunId": "previous",
                    "initiator": "CONTINUE_AS_NEW_INITIATOR_WORKFLOW",
                    "parentWorkflowExecution": {"workflowId": "parent", "runId": "r"},
                }
            },
        ),
        # 2-4: a first task, then a client's signal: not a signal-with-start's        → 1
        *task.items(),
        ("WORKFLOW_EXECUTION_SIGNALED", {}),
        # 5-7: a workflow task heartbeat (a long local activity): the task completes
        # and a new one is scheduled at once, nothing between                        → 1
        ("WORKFLOW_TASK_COMPLETED", {}),
        *task.items(),
        # 8: that task completes, having run two local activities (a marker each) and
        # retried one of them once: the markers of one task count 1, the retry 1     → 2
        (
            "WORKFLOW_TASK_COMPLETED",
            {
                "workflowTaskCompletedEventAttributes": {
                    "meteringMetadata": {"nonfirstLocalActivityExecutionAttempts": 1}
                }
            },
        ),
        ("MARKER_RECORDED", {"markerRecordedEventAttributes": {"workflowTaskCompletedEventId": 8}}),
        ("MARKER_RECORDED", {"markerRecordedEventAttributes": {"workflowTaskCompletedEventId": 8}}),
        # 11: a versioning upsert alone is exempt                                      → 0
        (
            "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
            {
                "upsertWorkflowSearchAttributesEventAttributes": {
                    "searchAttributes": {"indexedFields": {"TemporalChangeVersion": {}}}
                }
            },
        ),
        # 12-13: an activity, started at its third attempt: 1 + 2 retries               → 3
        ("ACTIVITY_TASK_SCHEDULED", {}),
        ("ACTIVITY_TASK_STARTED", {"activityTaskStartedEventAttributes": {"attempt": 3}}),
        # 14: a signal to another workflow counts in the signaled workflow's history    → 0
        ("SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED", {}),
        # 15: continue-as-new: the next run's start is the action                      → 0
        ("WORKFLOW_EXECUTION_CONTINUED_AS_NEW", {}),
    )
    assert [e.event_id for e in events] == list(range(1, 16))
    assert history_actions(events) == {
        "continued_as_new": 1,
        "signal": 1,
        "workflow_task_heartbeat": 1,
        "local_activity": 1,
        "local_activity_retry": 1,
        "activity": 1,
        "activity_retry": 2,
    }


def test_counts_add_scale_and_price() -> None:
    a = ActionCounts({"activity": 4.0}, histories=1)
    b = ActionCounts({"activity": 1.0, "timer": 2.0}, histories=2)
    assert (a + b).by_category == {"activity": 5.0, "timer": 2.0}
    assert (a + b).histories == 3
    assert a.scaled(2.5).by_category == {"activity": 10.0}
    # 8 actions per item at $50 per million actions: $400 per million items.
    assert LIST_PRICE_PER_MILLION_ACTIONS == 50.0
    assert cost_per_million_items(8) == pytest.approx(400.0)
    assert cost_per_million_items(0.07, 25.0) == pytest.approx(1.75)
