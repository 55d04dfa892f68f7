"""A caller's side of the write batcher, for use inside a workflow: send the write
to the shard of its key and wait for the acknowledgement, within a timeout."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from fleetbatch.activities.batcher_types import (
        SUBMIT_WRITE,
        SubmitWriteInput,
        WriteAck,
        WriteRequest,
    )
    from fleetbatch.activities.types import RecordOutcomesInput
    from fleetbatch.workflows.options import RETRY, STORE_TIMEOUT


class BatchedWriter:
    """Owned by a caller workflow, whose ``write_acked`` signal handler calls ``acked``."""

    def __init__(self) -> None:
        self._acks: dict[str, WriteAck] = {}
        self._sent = 0

    def acked(self, ack: WriteAck) -> None:
        """Keep an acknowledgement; a repeated one changes nothing."""
        self._acks.setdefault(ack.request_id, ack)

    async def write(
        self, record: RecordOutcomesInput, key: str, shards: int, timeout: timedelta
    ) -> str | None:
        """Write ``record`` through the batcher of ``key``'s shard.

        Returns:
            None once the batcher acknowledged the write; else why it was not made:
            the batcher's error, or that no acknowledgement came within ``timeout``.
        """
        info = workflow.info()
        self._sent += 1
        # A run id is unique (a redrive's re-run of this workflow id is a new
        # request) and, unlike the workflow id, part of the history itself.
        request_id = f"{info.run_id}/{self._sent}"
        request = WriteRequest(request_id, info.workflow_id, record)
        batcher: str = await workflow.execute_local_activity(
            SUBMIT_WRITE,
            SubmitWriteInput(request, key, shards),
            result_type=str,
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=RETRY,
        )
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: request_id in self._acks, timeout=timeout)
        ack = self._acks.pop(request_id, None)
        if ack is None:
            return (
                f"no acknowledgement from write batcher {batcher} "
                f"within {timeout.total_seconds():g}s"
            )
        return ack.error
