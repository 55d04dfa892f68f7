"""The vehicle-command pipeline (seed 000): a command to every VIN of a file.

ItemReader: a VIN per row, checked (ISO 3779 check digit for types that need
it) against the batch's command type. ItemProcessor: the chunk workflow's step
— consent (bulk, cached) → publish on the bus with a stable command id → wait
for the domain's answer (signalled in by the responder) → re-publish what
timed out → record. Rates are held by the Temporal server on each command
type's publish queue; leases keep two batches from commanding one vehicle at
once; the command type's breaker holds publishing back when the domain fails.
"""
