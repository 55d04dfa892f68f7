"""fleetbatch: send a command to every vehicle of a file, durably, on Temporal."""

__version__ = "0.1.0"
