"""What a pipeline is: the parts the engine plugs in, named as Step Functions'
Distributed Map and Spring Batch name them.

| part here | Distributed Map | Spring Batch |
| --- | --- | --- |
| ``key_field`` + ``validate`` (over ``intake.read_rows``) | ItemReader | ItemReader |
| the engine's chunks (``chunk_size``) | ItemBatcher | chunk (commit interval) |
| ``chunk_workflow`` (its ``process``) | ItemProcessor | ItemProcessor |
| what the step records (item ``result``, output files) | ResultWriter | ItemWriter |
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.worker import Worker

from fleetbatch.intake import Accepted, BadRow, RawRow, Rejection

if TYPE_CHECKING:
    from fleetbatch.config import Settings
    from fleetbatch.store import Store


@dataclass(frozen=True)
class BatchPlan:
    """How a pipeline runs one batch, from its stored options and the settings."""

    label: str
    """The batch in a word, for lists and filters (a vehicle command's name, say)."""
    step: dict[str, Any]
    """The step's options, carried in the batch's input to every chunk."""
    chunk_size: int | None = None
    """The pipeline's default items per chunk; the settings' when None."""
    max_in_flight: int | None = None
    lease: bool = True
    """Chunks lease their items' keys across batches."""
    search_attributes: dict[str, str] = field(default_factory=dict)
    """Keyword search attributes every chunk of the batch starts with."""
    policy: str | None = None
    """The rollout policy of a new batch whose submit names none (a command type's)."""


@dataclass
class WorkerContext:
    """What a pipeline's activities are built with."""

    client: Client
    settings: Settings
    store: Store
    task_queue: str
    resources: Mapping[str, Any] = field(default_factory=dict)
    """Pipeline-specific clients, by name (the bus, a consent service, a URL)."""


class Pipeline(abc.ABC):
    """One kind of batch. Subclasses are registered by name (``pipelines.register``)."""

    name: str
    key_field: str
    """The field of an input file that holds an item's key."""
    key_name: str
    """How messages name a key (``VIN``, ``user_id``)."""
    chunk_workflow: str
    """The workflow type the batch starts for each chunk (one of ``workflows()``)."""
    description: str
    label_metric: str | None = None
    """The metric label that carries a batch's label (``command`` for vehicle batches:
    a bounded set); None: the batch's metrics carry only ``pipeline``."""

    def metric_labels(self, label: str) -> dict[str, str]:
        """The labels of a batch's metrics: its pipeline, and its label if bounded."""
        labels = {"pipeline": self.name}
        if self.label_metric is not None:
            labels[self.label_metric] = label
        return labels

    @abc.abstractmethod
    def options(self, given: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
        """The batch's options, checked and completed, from what the operator gave.

        Raises:
            FleetbatchError: an unknown or invalid option (a precise message).
        """

    @abc.abstractmethod
    def plan(self, options: Mapping[str, Any], settings: Settings) -> BatchPlan:
        """How a batch with these (checked) options runs."""

    @abc.abstractmethod
    def validate(
        self, rows: Iterable[RawRow | BadRow], options: Mapping[str, Any], settings: Settings
    ) -> Iterator[Accepted | Rejection]:
        """Each row an item or a rejection with the reason, one row at a time."""

    @abc.abstractmethod
    def workflows(self) -> list[type]:
        """The workflow classes the pipeline's chunks run (registered on every worker)."""

    @abc.abstractmethod
    def activities(self, context: WorkerContext) -> list[Callable[..., Any]]:
        """The pipeline's activities for the main task queue, built with ``context``."""

    def normalise_key(self, text: str) -> str:
        """A key (or the start of one) as the pipeline stores keys."""
        return text.strip()

    def breaker(self, options: Mapping[str, Any]) -> str | None:
        """The key of the circuit breaker a batch with these options reports to, if any."""
        return None

    def workers(self, context: WorkerContext) -> list[Worker]:
        """Further workers on task queues of the pipeline's own (rate-limited ones)."""
        return []

    def search_attributes(self) -> tuple[SearchAttributeKey[Any], ...]:
        """Custom search attributes beyond the engine's, registered on the namespace."""
        return ()
