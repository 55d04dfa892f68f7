"""Timeouts and retry policies shared by the workflows' activity calls."""

from datetime import timedelta

from temporalio.common import RetryPolicy

from fleetbatch.activities.types import INVALID_INPUT

STORE_TIMEOUT = timedelta(seconds=60)
BUS_TIMEOUT = timedelta(seconds=30)
CONSENT_TIMEOUT = timedelta(seconds=30)

# Infrastructure failures (database, bus, a downstream service down) are retried
# until they recover: an item must never be lost to an outage. Bad data is not.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[INVALID_INPUT],
)
