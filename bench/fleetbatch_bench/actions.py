"""Billable Temporal Cloud actions, counted from workflow histories.

The rules are Temporal Cloud's, as its "Temporal Cloud Actions" page states them
(https://docs.temporal.io/cloud/actions, read on 2026-12-02). What a history shows
is an *estimate* by that page's own words: the histories carry most actions, not
all. Counted here, event by event:

- **Workflow started** (1): a client start (``WORKFLOW_EXECUTION_STARTED`` with no
  parent), a Continue-As-New (the new run's ``WORKFLOW_EXECUTION_STARTED``: the
  page's UI marks that event, not the old run's ``…_CONTINUED_AS_NEW``, which
  counts 0 so a chain is not counted twice), a retry or cron run likewise.
- **Child workflow started** (2 per ``START_CHILD_WORKFLOW_EXECUTION_INITIATED``):
  "one for durably storing the intent to start a Child Workflow and one for the
  attempt to start it". The child's own first ``WORKFLOW_EXECUTION_STARTED`` (it
  has a parent and no previous run) is that attempt and counts 0 here.
- **Signal-With-Start**: "one total action … regardless of whether the Workflow
  starts". A new workflow's history then opens ``STARTED``, ``SIGNALED``: that
  signal is the start's and counts 0; a signal-with-start to a running workflow
  is one ``SIGNALED`` (1).
- **Schedule**: a run a Schedule started (``TemporalScheduledById`` among its
  start's search attributes) adds 2 to its start's 1.
- **Activity** (1 per ``ACTIVITY_TASK_SCHEDULED``) and **activity retry**
  (``ACTIVITY_TASK_STARTED.attempt - 1``: retries write no events of their own).
- **Local activities**: "all RecordMarkers from each Workflow Task" count as 1:
  ``MARKER_RECORDED`` events are grouped by the workflow task completion they
  belong to (``workflow_task_completed_event_id``). Every marker counts so
  (the SDK's patch markers too, as the page makes no exception).
  **Local activity retries**: ``WORKFLOW_TASK_COMPLETED.metering_metadata
  .nonfirst_local_activity_execution_attempts``. **Workflow task heartbeats**
  (1 each: a local activity outlasting most of a workflow task's timeout makes the
  SDK complete the task and ask for a new one at once): a
  ``WORKFLOW_TASK_COMPLETED`` directly followed by ``WORKFLOW_TASK_SCHEDULED``, with
  no command or new event between (any other completion is followed by its
  commands' events, or a new task has an event that caused it).
- **Timer started** (1 per ``TIMER_STARTED``; SDK-implicit timers, e.g.
  ``wait_condition(timeout=…)``, are timers too).
- **Signal** (1 per ``WORKFLOW_EXECUTION_SIGNALED``, from a client or from a
  workflow: the page counts a workflow's signal in the *signaled* history, so
  ``SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED`` counts 0).
- **Update accepted** (1 per ``WORKFLOW_EXECUTION_UPDATE_ACCEPTED``).
- **Search attributes upserted** (1 per ``UPSERT_WORKFLOW_SEARCH_ATTRIBUTES``,
  however many attributes it sets; one that sets only ``TemporalChangeVersion``
  is exempt; attributes given at start are free).
- **Workflow options updated** (1 per ``WORKFLOW_EXECUTION_OPTIONS_UPDATED``),
  **reset** (1 per ``WORKFLOW_TASK_FAILED`` with cause ``RESET_WORKFLOW``),
  **Nexus** (1 per ``NEXUS_OPERATION_SCHEDULED`` and per
  ``NEXUS_OPERATION_CANCEL_REQUESTED``).

Not in any history, so **not counted** (each is billed): queries (the product's
progress and status queries, the Web UI's stack trace), activity heartbeats that
reach the server (fleetbatch's enrichment step heartbeats; the vehicle step does
not), rejected updates, failed or de-duplicated starts (these are free), history export,
and the Fairness surcharge: **+0.1 action per action** for every hour a namespace
has fairness on (:data:`FAIRNESS_SURCHARGE`), which fleetbatch's rate-limited
command types use.

List price (https://docs.temporal.io/cloud/pricing, read on 2026-12-02): "Actions
pricing starts at $50 per million Actions"; the Developer plan pays $50 at every
volume, the others $50 for the first 5 M a month, down to $25 over 100 M. Plans add
10 % of usage spend (or a minimum) on top; storage is priced apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from temporalio.api.enums.v1 import ContinueAsNewInitiator, EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

ACTIONS_URL = "https://docs.temporal.io/cloud/actions"
PRICING_URL = "https://docs.temporal.io/cloud/pricing"
PRICES_READ_ON = "2026-12-02"
LIST_PRICE_PER_MILLION_ACTIONS = 50.0
"""USD per million actions: Temporal Cloud's list price (its first tier, and the
Developer plan's at every volume), read on :data:`PRICES_READ_ON`."""
FAIRNESS_SURCHARGE = 0.1
"""Actions added per action for each hour a namespace has fairness on (not in the count)."""

SCHEDULED_BY = "TemporalScheduledById"
CHANGE_VERSION = "TemporalChangeVersion"


class Action(StrEnum):
    """A category of billable action, as Temporal Cloud's Actions page groups them."""

    WORKFLOW_STARTED = "workflow_started"
    CONTINUED_AS_NEW = "continued_as_new"
    CHILD_WORKFLOW_STARTED = "child_workflow_started"
    SCHEDULE = "schedule"
    ACTIVITY = "activity"
    ACTIVITY_RETRY = "activity_retry"
    LOCAL_ACTIVITY = "local_activity"
    LOCAL_ACTIVITY_RETRY = "local_activity_retry"
    WORKFLOW_TASK_HEARTBEAT = "workflow_task_heartbeat"
    TIMER = "timer"
    SIGNAL = "signal"
    UPDATE = "update"
    SEARCH_ATTRIBUTES = "search_attributes"
    WORKFLOW_OPTIONS = "workflow_options"
    RESET = "reset"
    NEXUS = "nexus"


_ONE_EACH: Mapping[int, Action] = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: Action.ACTIVITY,
    EventType.EVENT_TYPE_TIMER_STARTED: Action.TIMER,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: Action.UPDATE,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED: Action.WORKFLOW_OPTIONS,
    EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED: Action.NEXUS,
    EventType.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED: Action.NEXUS,
}


@dataclass(frozen=True)
class ActionCounts:
    """Billable actions by category over some histories."""

    by_category: Mapping[str, float] = field(default_factory=dict)
    histories: int = 0
    """Histories counted."""

    @property
    def total(self) -> float:
        return sum(self.by_category.values())

    def __add__(self, other: ActionCounts) -> ActionCounts:
        summed = Counter(self.by_category)
        summed.update(other.by_category)
        return ActionCounts(dict(summed), self.histories + other.histories)

    def scaled(self, factor: float) -> ActionCounts:
        """These counts times ``factor`` (a sample extrapolated to all its histories)."""
        return ActionCounts({k: v * factor for k, v in self.by_category.items()}, self.histories)


def _started(event: HistoryEvent, counts: Counter[str]) -> None:
    a = event.workflow_execution_started_event_attributes
    if a.continued_execution_run_id:
        new_run = a.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_WORKFLOW
        counts[Action.CONTINUED_AS_NEW if new_run else Action.WORKFLOW_STARTED] += 1
    elif not a.HasField("parent_workflow_execution"):
        counts[Action.WORKFLOW_STARTED] += 1
    # else: a child's first run, counted (2) in its parent's history.
    if SCHEDULED_BY in a.search_attributes.indexed_fields:
        counts[Action.SCHEDULE] += 2


def history_actions(events: Iterable[HistoryEvent]) -> Counter[str]:
    """One history's billable actions by category (see the module's rules)."""
    counts: Counter[str] = Counter()
    marker_tasks: set[int] = set()
    previous: int | None = None
    for event in events:
        kind = event.event_type
        if kind in _ONE_EACH:
            counts[_ONE_EACH[kind]] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            _started(event, counts)
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            counts[Action.CHILD_WORKFLOW_STARTED] += 2
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            retried = event.activity_task_started_event_attributes.attempt - 1
            if retried > 0:
                counts[Action.ACTIVITY_RETRY] += retried
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            task = event.marker_recorded_event_attributes.workflow_task_completed_event_id
            if task not in marker_tasks:
                marker_tasks.add(task)
                counts[Action.LOCAL_ACTIVITY] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            metering = event.workflow_task_completed_event_attributes.metering_metadata
            retries = metering.nonfirst_local_activity_execution_attempts
            if retries:
                counts[Action.LOCAL_ACTIVITY_RETRY] += retries
        elif (
            kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
            and previous == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        ):
            counts[Action.WORKFLOW_TASK_HEARTBEAT] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            # Right after a new run's start: the signal of a signal-with-start, whose
            # one action is the start's.
            if previous != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                counts[Action.SIGNAL] += 1
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            if set(fields.indexed_fields) - {CHANGE_VERSION}:
                counts[Action.SEARCH_ATTRIBUTES] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            cause = event.workflow_task_failed_event_attributes.cause
            if cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW:
                counts[Action.RESET] += 1
        previous = kind
    return counts


def count_actions(histories: Iterable[WorkflowHistory | Iterable[HistoryEvent]]) -> ActionCounts:
    """Billable actions by category over ``histories`` (every run of a workflow is a
    history of its own)."""
    total: Counter[str] = Counter()
    n = 0
    for history in histories:
        events = history.events if isinstance(history, WorkflowHistory) else history
        total.update(history_actions(events))
        n += 1
    return ActionCounts({str(k): v for k, v in total.items() if v}, n)


def cost_per_million_items(
    actions_per_item: float, price_per_million_actions: float = LIST_PRICE_PER_MILLION_ACTIONS
) -> float:
    """USD of actions for a million items: actions per item * 1e6 * the price of one
    action (``price_per_million_actions`` / 1e6), that is actions per item * price."""
    return actions_per_item * price_per_million_actions
