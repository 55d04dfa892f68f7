"""Streaming file parsing: bytes in, rows out; a pipeline's rules make each an
item or a rejection (the ItemReader of Step Functions and Spring Batch).

No I/O beyond the stream it is given, no database, no Temporal.
"""

from fleetbatch.intake.reader import MAX_LINE_BYTES, BadRow, RawRow, read_rows
from fleetbatch.intake.rows import Accepted, Rejection

__all__ = ["MAX_LINE_BYTES", "Accepted", "BadRow", "RawRow", "Rejection", "read_rows"]
