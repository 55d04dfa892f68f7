"""The notice workflow: one webhook notification, retried until the receiver takes it.

A child of the batch started with ABANDON and never awaited: a receiver that is
down delays nothing, and a notice outlives the batch that sent it (its last one,
``finished``, is started just before the batch completes).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from fleetbatch.activities.types import INVALID_INPUT, NOTIFY, Notice

NOTICE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=[INVALID_INPUT],
)
NOTICE_GIVES_UP_AFTER = timedelta(days=1)


@workflow.defn
class NoticeWorkflow:
    @workflow.run
    async def run(self, notice: Notice) -> None:
        await workflow.execute_activity(
            NOTIFY,
            notice,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=NOTICE_GIVES_UP_AFTER,
            retry_policy=NOTICE_RETRY,
        )
