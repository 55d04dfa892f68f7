"""The vehicle pipeline's activity names, inputs and outputs. Pure: its chunk
workflow imports this module."""

from __future__ import annotations

from dataclasses import dataclass, field

from fleetbatch.activities.types import BeginChunkResult, ItemColumns
from fleetbatch.domain import ChunkSpec

CHECK_CONSENT = "vehicle.check_consent"
PUBLISH_COMMANDS = "vehicle.publish_commands"
START_ROUND = "vehicle.start_round"
ADMIT = "vehicle.admit"


@dataclass(frozen=True)
class ConsentInput:
    vins: list[str]


@dataclass(frozen=True)
class ConsentResult:
    denied: list[str]
    """VINs whose owners have not consented."""


@dataclass(frozen=True)
class PublishInput:
    domain: str
    command: str
    batch_id: str
    reply_to: str
    attempt: int
    items: ItemColumns
    """The items' keys are their VINs, their effect ids the command ids."""
    window_end: float | None = None
    """When the batch's maintenance window closes (seconds since the epoch): from then
    on, by the worker's clock, the publish sends nothing. None: no window to keep."""
    not_before: float | None = None
    """A batch with a rate ramp: publish nothing before this (unix time, seconds)..."""
    pace: float | None = None
    """...and then one item each ``1 / pace`` seconds (None: all at once)."""


@dataclass(frozen=True)
class PublishResult:
    probe: bool = False
    """The breaker was half-open and this chunk is its probe: its report decides."""
    held: bool = False
    """The breaker held the publish back (it opened meanwhile): nothing was sent, and
    the chunk waits for admission before it publishes these items again."""
    window_closed: bool = False
    """The maintenance window had closed (``PublishInput.window_end`` passed): nothing
    was sent or counted, and the chunk publishes these items in the next window."""


@dataclass(frozen=True)
class AdmitInput:
    command: str
    caller: str
    """The chunk workflow asking (the half-open breaker's probe is one chunk)."""


@dataclass(frozen=True)
class AdmitResult:
    allowed: bool
    probe: bool = False
    retry_after: float = 0.0
    """Seconds to wait before asking again, when not allowed."""
    state: str = "closed"


@dataclass(frozen=True)
class StartRoundInput:
    """A chunk's round begun, consent checked and first attempt published, in one call."""

    batch_id: str
    chunk: ChunkSpec
    workflow_id: str
    domain: str
    command: str
    window_end: float | None = None
    """As ``PublishInput.window_end``, for the first attempt."""
    not_before: float | None = None
    """The first publish's schedule under a rate ramp (``PublishInput``)."""
    pace: float | None = None


@dataclass(frozen=True)
class StartRoundResult:
    begun: BeginChunkResult
    denied: list[str] = field(default_factory=list)
    """VINs of the begun items whose owners have not consented: not published."""
    probe: bool = False
    """As PublishResult.probe, for the first attempt."""
    window_closed: bool = False
    """As PublishResult.window_closed: the first attempt was not published."""
