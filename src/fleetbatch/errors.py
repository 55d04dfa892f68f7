"""Errors fleetbatch raises to its callers.

Hierarchy::

    FleetbatchError                 base of everything raised on purpose
    ├── ConfigError                 settings are missing, insecure or contradictory
    │   └── UnknownPolicyError      a rollout policy name that is not configured
    ├── InputFileError              an uploaded file cannot be read as a whole
    │   │                           (empty, no key column, not UTF-8, line too long)
    │   └── UploadTooLargeError     an upload is larger than the configured limit
    ├── NoValidRowsError            a new batch's file has no valid row: the batch is
    │                               closed at once (aborted), its rejections kept
    ├── UnknownPipelineError        a pipeline name that is not registered
    ├── UnknownCommandError         a command name that is not configured (vehicle pipeline)
    ├── BatchNotFoundError          a batch id the store does not know
    ├── ItemNotFoundError           a key the batch does not have
    ├── BatchConflictError          a file for a batch of another pipeline or command,
    │                               or a closed batch
    ├── TemporalUnavailableError    no Temporal server answers at the configured address
    ├── CodecError                  a payload cannot be decrypted (unknown key, tampered)
    └── BusUnavailableError         no NATS server answers at the configured bus URL

Per-row problems (an invalid VIN or email, a duplicate key) are not errors: they are
``Rejection`` records in the upload report, and the rest of the file is kept.
Inside workflows, bad data surfaces as non-retryable ``ApplicationError``s whose
``type`` is one of the names in ``fleetbatch.activities.errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleetbatch.store import UploadResult


class FleetbatchError(Exception):
    """Base class of every error fleetbatch raises on purpose."""


class ConfigError(FleetbatchError):
    """Raised when settings are missing, insecure or contradictory."""


class UnknownPolicyError(ConfigError):
    """Raised when a submit names a rollout policy that is neither built in nor configured."""


class InputFileError(FleetbatchError):
    """Raised when an input file cannot be processed at all; nothing of it is stored."""


class UploadTooLargeError(InputFileError):
    """Raised when an upload's body passes the configured size limit; nothing of it is stored."""


class NoValidRowsError(FleetbatchError):
    """Raised when every row of a new batch's file was rejected (or it had none): the
    batch is stored closed (``aborted``, with its rejections) and nothing runs.
    ``result`` is the upload's report, its rejected rows with their lines."""

    def __init__(self, message: str, result: UploadResult) -> None:
        super().__init__(message)
        self.result = result


class UnknownPipelineError(FleetbatchError):
    """Raised for a pipeline name that is not registered."""


class UnknownCommandError(FleetbatchError):
    """Raised for a command name that is not in the command registry."""


class BatchNotFoundError(FleetbatchError):
    """Raised when a batch id is not in the store."""


class ItemNotFoundError(FleetbatchError):
    """Raised when a batch has no item with the key asked for."""


class BatchConflictError(FleetbatchError):
    """Raised when a file cannot join a batch (other pipeline or command, batch closed)."""


class TemporalUnavailableError(FleetbatchError):
    """Raised when no Temporal server answers at the configured address."""


class CodecError(FleetbatchError):
    """Raised when an encrypted payload names a key the ring lacks or fails authentication."""


class BusUnavailableError(FleetbatchError):
    """Raised when no NATS server answers at the configured bus URL."""
