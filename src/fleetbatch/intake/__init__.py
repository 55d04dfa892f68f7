"""Streaming file parsing and row validation: bytes in, accepted rows and rejections out.

No I/O beyond the stream it is given, no database, no Temporal.
"""

from fleetbatch.intake.reader import MAX_LINE_BYTES, read_rows
from fleetbatch.intake.validate import Accepted, Rejection, validate_rows

__all__ = ["MAX_LINE_BYTES", "Accepted", "Rejection", "read_rows", "validate_rows"]
