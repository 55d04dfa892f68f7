"""Connecting to Temporal: the embedded dev server or a cluster with TLS / API key."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from fleetbatch.config import Settings
from fleetbatch.errors import TemporalUnavailableError
from fleetbatch.pipelines import all_pipelines
from fleetbatch.temporal.converter import DATA_CONVERTER
from fleetbatch.workflows import search_attributes


def _tls(settings: Settings) -> TLSConfig | bool:
    if not (settings.temporal_tls or settings.temporal_tls_ca or settings.temporal_tls_cert):
        return False
    return TLSConfig(
        server_root_ca_cert=settings.temporal_tls_ca.read_bytes()
        if settings.temporal_tls_ca
        else None,
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=settings.temporal_tls_key.read_bytes()
        if settings.temporal_tls_key
        else None,
    )


async def connect(
    settings: Settings, address: str | None = None, runtime: Runtime | None = None
) -> Client:
    """A client for the configured Temporal.

    Raises:
        TemporalUnavailableError: nothing answers at the address.
    """
    target = address or settings.effective_temporal_address
    try:
        return await Client.connect(
            target,
            namespace=settings.temporal_namespace,
            tls=_tls(settings),
            api_key=settings.temporal_api_key,
            runtime=runtime,
            data_converter=DATA_CONVERTER,
        )
    except RuntimeError as exc:
        hint = (
            " (start the embedded stack with `fleetbatch dev`, or set FLEETBATCH_TEMPORAL_ADDRESS)"
            if settings.embedded_temporal
            else ""
        )
        raise TemporalUnavailableError(f"no Temporal server at {target}{hint}: {exc}") from None


async def ensure_search_attributes(client: Client) -> None:
    """Register fleetbatch's custom search attributes (the engine's and every
    pipeline's) where they are missing."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(listed.custom_attributes)
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server
            raise
        known = set()
    keys: list[SearchAttributeKey[Any]] = [*search_attributes.ENGINE]
    keys += [a for p in all_pipelines() for a in p.search_attributes()]
    missing = {
        key.name: IndexedValueType.ValueType(_INDEXED[key.indexed_value_type])
        for key in keys
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )


_INDEXED = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}
