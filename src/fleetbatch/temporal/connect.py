"""Connecting to Temporal: the embedded dev server or a cluster with TLS / API key."""

from __future__ import annotations

import logging
import shlex
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
from fleetbatch.errors import ConfigError, TemporalUnavailableError
from fleetbatch.pipelines import all_pipelines
from fleetbatch.temporal.codec import data_converter
from fleetbatch.workflows import search_attributes

log = logging.getLogger(__name__)


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
    """A client for the configured Temporal, encrypting payloads when a key ring is
    configured.

    Raises:
        ConfigError: production settings without payload keys or hash secret.
        TemporalUnavailableError: nothing answers at the address.
    """
    settings.check_protection()
    target = address or settings.effective_temporal_address
    try:
        return await Client.connect(
            target,
            namespace=settings.temporal_namespace,
            tls=_tls(settings),
            api_key=settings.temporal_api_key,
            runtime=runtime,
            data_converter=data_converter(settings),
        )
    except RuntimeError as exc:
        hint = (
            " (start the embedded stack with `fleetbatch dev`, or set FLEETBATCH_TEMPORAL_ADDRESS)"
            if settings.embedded_temporal
            else ""
        )
        raise TemporalUnavailableError(f"no Temporal server at {target}{hint}: {exc}") from None


def fleetbatch_search_attributes() -> list[SearchAttributeKey[Any]]:
    """The custom search attributes fleetbatch sets: the engine's and every pipeline's."""
    keys: dict[str, SearchAttributeKey[Any]] = {k.name: k for k in search_attributes.ENGINE}
    for pipeline in all_pipelines():
        keys.update((k.name, k) for k in pipeline.search_attributes())
    return list(keys.values())


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register fleetbatch's custom search attributes (the engine's and every
    pipeline's) in the client's namespace where they are missing.

    Returns:
        The names it registered (none when every one was there).

    Raises:
        ConfigError: some are missing and the server refuses to let this client
            register them (a cluster's authorizer, Temporal Cloud): the message names
            every missing attribute with its type and the exact commands to run.
    """
    keys = fleetbatch_search_attributes()
    known = await _registered(client, keys)
    missing = [key for key in keys if key.name not in known]
    if not missing:
        return []
    request = AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={
            key.name: IndexedValueType.ValueType(_INDEXED[key.indexed_value_type])
            for key in missing
        },
    )
    try:
        await client.operator_service.add_search_attributes(request)
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            pass  # another worker registered them meanwhile
        elif exc.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            raise ConfigError(_refusal(client, missing, exc)) from None
        else:
            raise
    names = [key.name for key in missing]
    log.info(
        "registered search attributes in Temporal namespace %r: %s",
        client.namespace,
        ", ".join(f"{key.name} ({_type_name(key)})" for key in missing),
    )
    return names


async def _registered(client: Client, keys: list[SearchAttributeKey[Any]]) -> set[str]:
    """The names of the namespace's custom search attributes (of ``keys``, at least)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.UNIMPLEMENTED:
            return set()  # the time-skipping test server lists none, and adds them
        if exc.status != RPCStatusCode.PERMISSION_DENIED:
            raise
        # May not list them (a namespace-scoped credential): visibility queries tell.
        return await _queryable(client, keys)
    return set(listed.custom_attributes)


async def _queryable(client: Client, keys: list[SearchAttributeKey[Any]]) -> set[str]:
    """The names a visibility query accepts: an unknown one is INVALID_ARGUMENT."""
    found = set()
    for key in keys:
        try:
            await client.count_workflows(f"{key.name} = 'fleetbatch-probe'")
        except RPCError as exc:
            if exc.status != RPCStatusCode.INVALID_ARGUMENT:
                raise
        else:
            found.add(key.name)
    return found


def search_attribute_commands(
    namespace: str, address: str, missing: list[SearchAttributeKey[Any]]
) -> list[str]:
    """The commands that register ``missing`` in ``namespace``: a Temporal CLI one per
    attribute (at ``address``) for a cluster, then the ``tcld`` one for Temporal Cloud.

    One attribute per CLI command: given several ``--name``s and one ``--type``, the
    Temporal CLI (1.9) registers the first name only, and says it added them all.
    """
    commands = [
        shlex.join(
            [
                *("temporal", "operator", "search-attribute", "create"),
                *("--address", address, "--namespace", namespace),
                *("--name", key.name, "--type", _type_name(key)),
            ]
        )
        for key in missing
    ]
    tcld = ["tcld", "namespace", "search-attributes", "add", "--namespace", namespace]
    tcld += [a for key in missing for a in ("--search-attribute", f"{key.name}={_type_name(key)}")]
    return [*commands, shlex.join(tcld)]


def _refusal(client: Client, missing: list[SearchAttributeKey[Any]], exc: RPCError) -> str:
    address = client.service_client.config.target_host
    *cluster, cloud = search_attribute_commands(client.namespace, address, missing)
    listed = ", ".join(f"{key.name} ({_type_name(key)})" for key in missing)
    return (
        f"Temporal namespace {client.namespace!r} at {address} lacks fleetbatch's search "
        f"attributes {listed}, and may not have them registered by this worker "
        f"({exc.status.name}: {exc.message}). Register them, then start the worker again:\n"
        + "".join(f"  {command}\n" for command in cluster)
        + f"or, on Temporal Cloud:\n  {cloud}"
    )


def _type_name(key: SearchAttributeKey[Any]) -> str:
    return _TYPE_NAMES[key.indexed_value_type]


_INDEXED = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}
_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}
"""The type names the Temporal CLI and tcld take."""
