"""Pipelines: what a batch does with its items. The engine runs any registered one.

``vehicle`` sends a command to every VIN of a file; ``enrich`` enriches every user
of a CSV through an HTTP service and writes result files. A batch names its
pipeline, which is fixed for the batch's life.
"""

from __future__ import annotations

from fleetbatch.domain.names import unknown_name
from fleetbatch.errors import UnknownPipelineError
from fleetbatch.pipelines.base import BatchPlan, Pipeline, WorkerContext

_REGISTRY: dict[str, Pipeline] = {}


def register(pipeline: Pipeline) -> Pipeline:
    """Make ``pipeline`` available by its name (a second one of a name replaces it)."""
    _REGISTRY[pipeline.name] = pipeline
    return pipeline


def get_pipeline(name: str) -> Pipeline:
    """The pipeline called ``name``.

    Raises:
        UnknownPipelineError: none is registered by that name.
    """
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownPipelineError(unknown_name("pipeline", name, sorted(_REGISTRY))) from None


def all_pipelines() -> list[Pipeline]:
    """Every registered pipeline, by name."""
    _load_builtins()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def _load_builtins() -> None:
    # Imported on first use: each built-in pipeline registers itself.
    from fleetbatch.pipelines.enrich import pipeline as _enrich  # noqa: F401
    from fleetbatch.pipelines.vehicle import pipeline as _vehicle  # noqa: F401


__all__ = ["BatchPlan", "Pipeline", "WorkerContext", "all_pipelines", "get_pipeline", "register"]
