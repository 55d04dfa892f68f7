"""Custom search attributes: any batch, pipeline or item key is one Web UI query away.

The engine sets the batch id and pipeline on every batch and chunk workflow and,
on chunks small enough, the keys of their items; a pipeline adds keyword
attributes of its own (``Pipeline.search_attributes``), set at submit.
"""

from collections.abc import Mapping

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

BATCH_ID = SearchAttributeKey.for_keyword("FleetbatchBatchId")
PIPELINE = SearchAttributeKey.for_keyword("FleetbatchPipeline")
KEYS = SearchAttributeKey.for_keyword_list("FleetbatchKeys")

ENGINE = (BATCH_ID, PIPELINE, KEYS)


def for_batch(batch_id: str, pipeline: str, extra: Mapping[str, str]) -> TypedSearchAttributes:
    """The attributes every batch and chunk workflow starts with; ``extra``: the
    pipeline's keyword attributes, by name."""
    pairs: list[SearchAttributePair[str]] = [
        SearchAttributePair(BATCH_ID, batch_id),
        SearchAttributePair(PIPELINE, pipeline),
    ]
    pairs += [
        SearchAttributePair(SearchAttributeKey.for_keyword(name), value)
        for name, value in extra.items()
    ]
    return TypedSearchAttributes(pairs)
