"""What the API takes and returns, one family per resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fleetbatch.domain import ItemStatus, format_duration
from fleetbatch.services.progress import Snapshot


class Problem(BaseModel):
    """Every error: the status code says what kind, ``detail`` says exactly what."""

    detail: str


Responses = dict[int | str, dict[str, Any]]


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
    priority: float | None = Field(default=None, description="fairness weight, above zero")
    max_failures: str | None = Field(default=None, description="abort past '5%' or a count")


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


class OutputFilePublic(BaseModel):
    name: str = Field(description="stable: the batch and the chunk's item range")
    size: int = Field(description="bytes")


class ControlResult(BaseModel):
    batch_id: str
    action: str
    message: str


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
