"""fleetbatch's own metric names, next to the Temporal SDK's on one Prometheus endpoint.

Workflows record through ``workflow.metric_meter()`` (nothing is recorded during
replay) and activities through ``activity.metric_meter()``; both reach the
process's Temporal runtime, whose Prometheus exporter serves them. Pure: workflow
code imports this module.

The table of names, types, labels and meanings is in docs/metrics.md.
"""

ITEMS = "fleetbatch_items_total"
CONSENT_DENIED = "fleetbatch_consent_denied_total"
REPUBLISHES = "fleetbatch_republishes_total"
PUBLISH_DURATION = "fleetbatch_publish_duration_seconds"
RESPONSE_LATENCY = "fleetbatch_response_latency_seconds"
CHUNK_DURATION = "fleetbatch_chunk_duration_seconds"
CHUNKS_IN_FLIGHT = "fleetbatch_chunks_in_flight"
BATCHES_BY_ROLLOUT_STATE = "fleetbatch_batches_by_rollout_state"
RAMP_ALLOWED_RATE = "fleetbatch_ramp_allowed_items_per_second"
PUBLISHED = "fleetbatch_commands_published_total"
BREAKER_STATE = "fleetbatch_breaker_state"
DEAD_LETTERS = "fleetbatch_dead_letters"
ENRICH_RESULTS = "fleetbatch_enrich_results_total"
BATCHER_REQUESTS = "fleetbatch_batcher_requests_total"
BATCHER_DUPLICATES = "fleetbatch_batcher_duplicates_total"
BATCHER_FLUSHES = "fleetbatch_batcher_flushes_total"
BATCHER_FLUSH_LATENCY = "fleetbatch_batcher_flush_latency_seconds"
BATCHER_PENDING = "fleetbatch_batcher_pending"
BATCHER_DEDUP_WINDOW = "fleetbatch_batcher_dedup_window"
BATCHER_CONTINUED = "fleetbatch_batcher_continued_as_new_total"

WAVE_RUNNING = "wave_running"
AWAITING_APPROVAL = "awaiting_approval"
GATE_FAILED = "gate_failed"
WINDOW_WAITING = "window_waiting"
WINDOW_OPEN = "window_open"
WINDOW_ENDED = "window_ended"
RAMPING = "ramping"
ROLLOUT_STATES = (
    WAVE_RUNNING,
    AWAITING_APPROVAL,
    GATE_FAILED,
    WINDOW_WAITING,
    WINDOW_OPEN,
    WINDOW_ENDED,
    RAMPING,
)
"""The ``state`` label of ``fleetbatch_batches_by_rollout_state``: a fixed set, so
the series stay bounded (one per pipeline, command and state)."""

SECONDS_BUCKETS = {
    PUBLISH_DURATION: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
    RESPONSE_LATENCY: [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0],
    BATCHER_FLUSH_LATENCY: [0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0],
    CHUNK_DURATION: [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0],
}
