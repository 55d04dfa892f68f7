"""Custom search attributes: any batch, command type or VIN is one Web UI query away."""

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

BATCH_ID = SearchAttributeKey.for_keyword("FleetbatchBatchId")
COMMAND = SearchAttributeKey.for_keyword("FleetbatchCommand")
VINS = SearchAttributeKey.for_keyword_list("FleetbatchVins")

ALL = (BATCH_ID, COMMAND, VINS)


def for_batch(batch_id: str, command: str) -> TypedSearchAttributes:
    """The attributes every batch and chunk workflow starts with."""
    return TypedSearchAttributes(
        [SearchAttributePair(BATCH_ID, batch_id), SearchAttributePair(COMMAND, command)]
    )
