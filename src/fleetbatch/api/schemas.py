"""What the API takes and returns, one family per resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fleetbatch.domain import TERMINAL, ItemStatus, format_duration
from fleetbatch.services.progress import Snapshot
from fleetbatch.store import ItemHistory


class Problem(BaseModel):
    """Every error: the status code says what kind, ``detail`` says exactly what."""

    detail: str


Responses = dict[int | str, dict[str, Any]]

MAX_INT = 2**63 - 1
"""The largest offset or id a query takes: a database's 64-bit integer (beyond: 422)."""


def problems(*codes: int) -> Responses:
    """OpenAPI entries for error answers with these status codes, and 422 (bad parameters)."""
    return {code: {"model": Problem} for code in sorted({*codes, 422})}


class UploadOptions(BaseModel):
    """The text fields of an upload, beside its ``file``; empty fields are left out."""

    model_config = {"extra": "forbid"}

    pipeline: str | None = Field(
        default=None, description="a new batch's pipeline: vehicle (the default) or enrich"
    )
    command: str | None = Field(default=None, description="vehicle: required for a new batch")
    format: str | None = Field(
        default=None, description="enrich: result files as jsonl (the default) or csv"
    )
    batch_id: str | None = Field(default=None, description="a new batch's id; generated if unset")
    chunk_size: int | None = Field(default=None, ge=1, le=5000)
    max_in_flight: int | None = Field(default=None, ge=1, le=1000)
    priority: float | None = Field(
        default=None, allow_inf_nan=False, description="fairness weight, above zero"
    )
    max_failures: str | None = Field(default=None, description="abort past '5%' or a count")
    waves: str | None = Field(
        default=None,
        description="roll out in waves: '1%,10%,100%', '50,500,all' or '50x2' (exponential)",
    )
    gate_failures: str | None = Field(
        default=None, description="a wave's gate: at most this share ('5%') or count may fail"
    )
    gate_min_items: int | None = Field(
        default=None, ge=0, description="the gate judges once this many items executed"
    )
    approve_waves: bool | None = Field(
        default=None, description="true: every wave after the first waits for an approval"
    )
    on_gate_failure: str | None = Field(
        default=None, description="pause (the default) or abort when a gate fails"
    )
    webhook_url: str | None = Field(
        default=None,
        description="signed notices, with or without waves: a wave waits, a gate fails, "
        "the breaker opens or closes, the batch ends",
    )
    policy: str | None = Field(
        default=None,
        description="a named rollout policy (cautious-ota, careful, all-at-once or one "
        "configured); the fields given override its own. Without it and without rollout "
        "fields, a new batch gets its command type's policy (ota_update: cautious-ota)",
    )
    start_at: str | None = Field(
        default=None,
        description="start no chunk before this ISO 8601 time (UTC without an offset)",
    )
    end_at: str | None = Field(
        default=None, description="at this ISO 8601 time the batch pauses, or cancels (on_end)"
    )
    on_end: str | None = Field(
        default=None, description="pause (the default) or cancel at the end time"
    )
    windows: str | None = Field(
        default=None,
        description="maintenance windows, ';' between them: the batch publishes only inside "
        "one. '01:00-05:00 Europe/Berlin', 'sat,sun 22:00-06:00 UTC' or a cron with a "
        "duration and a zone '0 1 * * 1-5 4h Europe/Berlin'",
    )
    ramp: str | None = Field(
        default=None,
        description="the batch's own rate, ramping up: 'base=60/min,factor=2,after=100,"
        "max=600/min' (after=N notified items, or succeeded=N)",
    )
    overshoot: int | None = Field(
        default=None,
        ge=1,
        description="with max_failures or a gate: at most this many commands past what "
        "the rule tolerates can be out when it trips (the window shrinks to fit)",
    )


class RejectionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    line: int
    value: str
    reason: str


class UploadPublic(BaseModel):
    """What happened to one file: the batch it joined and its rejected rows."""

    batch_id: str
    upload_id: int
    pipeline: str
    label: str = Field(description="what the batch does: its command type, or its pipeline")
    accepted: int
    rejected: int
    rejections: list[RejectionPublic] = Field(
        description="the first 1,000 rejected rows; all are in the rejections report"
    )

    model_config = ConfigDict(from_attributes=True)


class BatchPublic(BaseModel):
    id: str
    pipeline: str
    label: str = Field(description="what the batch does: its command type, or its pipeline")
    options: dict[str, Any] = Field(description="the pipeline's options, as given at submit")
    status: str
    chunk_size: int
    max_in_flight: int
    priority: float
    max_failures: str | None
    rollout: dict[str, Any] | None = Field(
        default=None,
        description="its waves, gate, schedule (start_at, end_at, on_end, windows) and the "
        "policy they came from; null: sent at once",
    )
    redrives: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    model_config = ConfigDict(from_attributes=True)


class BatchPage(BaseModel):
    batches: list[BatchPublic]
    total: int = Field(description="batches matching the filters in all")
    limit: int
    offset: int


class ProgressPublic(BaseModel):
    """Live progress: the running workflow's, or the store's once it is done."""

    phase: str
    paused: bool
    finished: bool
    total: int
    done: int
    percent: float
    counts: dict[str, int] = Field(
        description="items by status from the store, every status present; they add up to total"
    )
    items_per_second: float = Field(
        description="completions per second over the last minute (over the whole run once finished)"
    )
    eta_seconds: float | None = Field(
        description="seconds to the end at that rate; null when unknown, paused, stopping "
        "or finished"
    )
    updated_at: datetime | None = Field(description="when an item last changed status")
    eta: str = Field(description="the ETA as shown: '12m 30s', '1h 02m'; '-' when there is none")
    breaker: str | None = Field(
        description="the batch's circuit breaker (its command type's): closed, half_open, "
        "open; null for a pipeline without one"
    )
    stop_reason: str | None
    wave: int = Field(default=0, description="the current wave, from 1; 0 without waves")
    waves_total: int = 0
    gate: str | None = Field(default=None, description="the wave's gate: holding, failed, waived")
    gate_reason: str | None = Field(default=None, description="why the gate failed, in figures")
    awaiting_approval: int | None = Field(
        default=None, description="the wave (from 1) waiting for an operator's approval"
    )
    window: str | None = Field(
        default=None,
        description="a scheduled batch: open, waiting (for its start time or next maintenance "
        "window: nothing is published) or ended (past its end time); null without a schedule",
    )
    window_until: datetime | None = Field(
        default=None,
        description="when the window state changes: the next window opens (waiting) or this "
        "one closes (open); null: never",
    )
    allowed_per_minute: float | None = Field(
        default=None,
        description="a batch with a rate ramp: the rate it allows itself now, items per minute",
    )
    in_flight_allowance: int | None = Field(
        default=None,
        description="a batch with an overshoot bound: items its abort rules afford in flight now",
    )

    @classmethod
    def of(cls, snap: Snapshot) -> ProgressPublic:
        return cls(
            phase=snap.phase,
            paused=snap.paused,
            finished=snap.finished,
            total=snap.total,
            done=snap.done,
            percent=round(100.0 * snap.done / snap.total, 1) if snap.total else 0.0,
            counts={s.value: snap.counts.get(s.value, 0) for s in ItemStatus},
            items_per_second=round(snap.items_per_second, 2),
            eta_seconds=None if snap.eta_seconds is None else round(snap.eta_seconds, 1),
            eta=format_duration(snap.eta_seconds),
            breaker=snap.breaker,
            stop_reason=snap.stop_reason,
            updated_at=snap.updated_at,
            wave=snap.wave,
            waves_total=snap.waves_total,
            gate=snap.gate,
            gate_reason=snap.gate_reason,
            awaiting_approval=snap.awaiting_approval,
            window=snap.window,
            window_until=snap.window_until,
            allowed_per_minute=None
            if snap.allowed_per_minute is None
            else round(snap.allowed_per_minute, 1),
            in_flight_allowance=snap.in_flight_allowance,
        )


class BatchDetail(BatchPublic):
    progress: ProgressPublic
    workflow_id: str
    temporal_url: str | None = Field(description="the batch workflow in the Temporal Web UI")


class ItemPublic(BaseModel):
    id: int
    key: str = Field(description="the item's key: a VIN, a user id")
    payload: dict[str, Any] | None = Field(description="the row's other fields the step uses")
    status: str
    attempts: int
    line: int
    upload_id: int
    effect_id: str = Field(description="stable id of the item's effect (a command id)")
    error: str | None
    result: dict[str, Any] | None = Field(description="what the step recorded (enrich: the record)")
    workflow_id: str | None
    updated_at: datetime
    temporal_url: str | None = Field(description="the item's workflow in the Temporal Web UI")

    @classmethod
    def of(cls, row: dict[str, Any], temporal_url: str | None) -> ItemPublic:
        fields = {k: row[k] for k in cls.model_fields if k in row}
        return cls(**fields, temporal_url=temporal_url)


class ItemPage(BaseModel):
    items: list[ItemPublic]
    next_after: int | None = Field(
        description="pass as ``after`` for the next page; null on the last page"
    )


class AttemptPublic(BaseModel):
    """One publish of the item's command, and what came of it."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int = Field(description="1, 2, … under one effect id; a redrive starts again at 1")
    effect_id: str = Field(description="the effect id it went out with (a command id)")
    published_at: datetime = Field(description="when the bus took it (UTC)")
    answered_at: datetime | None = Field(
        description="when the domain's answer reached the chunk (UTC); null if none came"
    )
    outcome: str | None = Field(
        description="succeeded, failed: <reason>, timed out after <N>s, cancelled: <reason>; "
        "null while the attempt waits for its answer"
    )


class ItemHistoryPublic(BaseModel):
    """An item with every attempt of its command, oldest first (``fleetbatch item --json``)."""

    batch_id: str
    key: str = Field(description="the item's key: a VIN, a user id")
    line: int = Field(description="its line in the file it came from")
    status: str
    outcome: str | None = Field(
        description="the final outcome: the terminal status, and the reason after a colon; "
        "null while the item is pending or in flight"
    )
    error: str | None
    effect_id: str = Field(description="the item's current effect id (a command id)")
    result: dict[str, Any] | None = Field(description="what the step recorded (enrich: the record)")
    updated_at: datetime
    workflow_id: str | None = Field(description="the chunk workflow that ran it last")
    temporal_url: str | None = Field(description="that chunk workflow in the Temporal Web UI")
    attempts: list[AttemptPublic] = Field(
        description="every attempt in the order they went out, a redrive's after the earlier ones"
    )

    @classmethod
    def of(cls, history: ItemHistory, temporal_url: str | None) -> ItemHistoryPublic:
        item = history.item
        status, error = item["status"], item["error"]
        outcome = None
        if status in TERMINAL:
            outcome = f"{status}: {error}" if error else status
        return cls(
            batch_id=item["batch_id"],
            key=item["key"],
            line=item["line"],
            status=status,
            outcome=outcome,
            error=error,
            effect_id=item["effect_id"],
            result=item["result"],
            updated_at=item["updated_at"],
            workflow_id=item["workflow_id"],
            temporal_url=temporal_url,
            attempts=[AttemptPublic.model_validate(a) for a in history.attempts],
        )


class OutputFilePublic(BaseModel):
    name: str = Field(description="stable: the batch and the chunk's item range")
    size: int = Field(description="bytes")


class ControlResult(BaseModel):
    batch_id: str
    action: str
    message: str


class ApproveRequest(BaseModel):
    wave: int = Field(ge=1, description="the wave (from 1) that waits for approval")


class ApproveResult(ControlResult):
    wave: int = Field(description="the current wave, from 1, once approved")
    waves_total: int
    awaiting_approval: int | None


class CancelRequest(BaseModel):
    reason: str = Field(default="cancelled by an operator", min_length=1, max_length=200)


class RedriveRequest(BaseModel):
    statuses: list[str] = Field(
        default=["failed"],
        description="items that ended so: failed, cancelled or skipped",
        max_length=3,
    )
    reason: str | None = Field(
        default=None,
        description="only items whose error is exactly this (a reason of the batch's failures)",
        max_length=2000,
    )


class RedriveResult(BaseModel):
    batch_id: str
    redriven: int


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
