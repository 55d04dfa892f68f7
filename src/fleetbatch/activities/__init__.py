"""Activities: the only code that does I/O on a workflow's behalf.

Each group is a class built with its dependencies; the worker registers the
bound methods. Workflows import only ``fleetbatch.activities.types``.
"""
