"""fleetbatch: run every item of a file through a pipeline, durably, on Temporal."""

__version__ = "0.2.0"
