"""Long-running services beside the worker: the responder and the simulators."""
