"""Connecting to Temporal: the embedded dev server or a cluster with TLS / API key."""

from __future__ import annotations

import logging
import re
import shlex
from pathlib import Path
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


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"FLEETBATCH_{setting.upper()}: cannot read {path}: {exc.strerror or exc}"
        ) from None


def _tls(settings: Settings) -> TLSConfig | bool:
    """The TLS the settings ask for: off, the system's trusted CAs, or a TLSConfig.

    An API key turns TLS on: it is a secret, and Temporal Cloud only takes it over TLS.
    """
    files = (settings.temporal_tls_ca, settings.temporal_tls_cert, settings.temporal_tls_key)
    if not any(files):
        return bool(settings.temporal_tls or settings.temporal_api_key)
    return TLSConfig(
        server_root_ca_cert=_read("temporal_tls_ca", settings.temporal_tls_ca)
        if settings.temporal_tls_ca
        else None,
        client_cert=_read("temporal_tls_cert", settings.temporal_tls_cert)
        if settings.temporal_tls_cert
        else None,
        client_private_key=_read("temporal_tls_key", settings.temporal_tls_key)
        if settings.temporal_tls_key
        else None,
    )


def connect_options(settings: Settings) -> dict[str, Any]:
    """``Client.connect``'s TLS, API key and gRPC metadata for the settings: from the
    Temporal profile (``temporal_profile``) when one is set, else from fleetbatch's own
    ``temporal_tls*`` and ``temporal_api_key``."""
    profile = settings.temporal_connect_options
    if profile is not None:
        return {"tls": False, **profile}
    return {"tls": _tls(settings), "api_key": settings.temporal_api_key}


async def connect(
    settings: Settings, address: str | None = None, runtime: Runtime | None = None
) -> Client:
    """A client for the configured Temporal, encrypting payloads when a key ring is
    configured.

    Raises:
        TemporalUnavailableError: nothing answers at the address (worth waiting for).
        ConfigError: something answers, but TLS or authentication fails: the server's
            certificate is not trusted or not for that name, a client certificate is
            missing or refused, TLS on one side only, the API key is refused. The
            message names the address and what failed. Production settings
            without payload keys or hash secret.
    """
    settings.check_protection()
    target = address or settings.effective_temporal_address
    options = connect_options(settings)
    try:
        return await Client.connect(
            target,
            namespace=settings.temporal_namespace,
            runtime=runtime,
            data_converter=data_converter(settings),
            **options,
        )
    except RuntimeError as exc:
        problem = connect_problem(target, settings, options, str(exc))
        if problem is not None:
            raise ConfigError(problem) from None
        if settings.embedded_temporal:
            hint = (
                " (start the embedded stack with `fleetbatch dev`, "
                "or set FLEETBATCH_TEMPORAL_ADDRESS)"
            )
        elif not options.get("tls") and "call error after connection" in str(exc):
            # Something took the TCP connection but not plaintext gRPC: perhaps TLS.
            # Not a ConfigError: a server starting up may answer so too (worth waiting).
            hint = (
                " (it took the connection but answered no plaintext gRPC: if it requires "
                "TLS, set FLEETBATCH_TEMPORAL_TLS=true)"
            )
        else:
            hint = ""
        raise TemporalUnavailableError(f"no Temporal server at {target}{hint}: {exc}") from None


def connect_problem(
    target: str, settings: Settings, options: dict[str, Any], error: str
) -> str | None:
    """What a failed connection says about the TLS or credentials, in a sentence that
    names the address, what failed and what to set; None when it says nothing of them
    (nothing listens there, the network is down: worth trying again).

    The SDK reports these as text only (a ``RuntimeError`` from its Rust core, rustls
    and tonic): the patterns below are those texts, each proven by
    tests/integration/test_temporal_tls.py against nginx terminating TLS and mTLS.
    """
    tls = options.get("tls")
    profile = settings.temporal_profile
    if profile:
        via = f"Temporal profile {profile!r}"
        set_ca = f"tls.server_ca_cert_path in {via}"
        set_cert = f"tls.client_cert_path and tls.client_key_path in {via}"
    else:
        via = "FLEETBATCH_TEMPORAL_TLS_CA"
        set_ca = "FLEETBATCH_TEMPORAL_TLS_CA"
        set_cert = "FLEETBATCH_TEMPORAL_TLS_CERT and FLEETBATCH_TEMPORAL_TLS_KEY"
    has_ca = isinstance(tls, TLSConfig) and tls.server_root_ca_cert is not None
    has_cert = isinstance(tls, TLSConfig) and tls.client_cert is not None
    trust = (
        f"the CA certificate of {via}"
        + (f" ({settings.temporal_tls_ca})" if settings.temporal_tls_ca else "")
        if has_ca
        else f"the system's trusted CAs (set {set_ca} to the CA that signed the server's "
        "certificate)"
    )
    prefix = f"TLS to Temporal at {target} failed: "
    if "InvalidCertificate(" in error:
        if "UnknownIssuer" in error or "BadSignature" in error:
            return (
                prefix + "certificate verify failed: the server's certificate is not "
                f"signed by {trust}"
            )
        if "NotValidForName" in error:
            wanted = re.search(r'expected: (?:DnsName|IpAddress)\(\\*"?([^"\\)]+)', error)
            expected = repr(wanted.group(1)) if wanted else repr(target.rsplit(":", 1)[0])
            presented = re.search(r"presented: \[(.*?)\]", error)
            found = (
                re.findall(r'(?:DnsName|IpAddress)\(\\*"?([^"\\)]+)', presented.group(1))
                if presented
                else []
            )
            names = ", ".join(found) or "other names"
            return (
                prefix + "certificate verify failed: the server's certificate is not valid "
                f"for {expected} (it is for {names}); connect by one of "
                "its names (or, in a Temporal profile, set tls.server_name to one)"
            )
        if "Expired" in error or "NotValidYet" in error:
            return (
                prefix + "certificate verify failed: the server's certificate has expired "
                "or is not valid yet"
            )
        inner = re.search(r"InvalidCertificate\((\w+)", error)
        detail = inner.group(1) if inner else "invalid certificate"
        return prefix + f"certificate verify failed ({detail})"
    if "InconsistentKeys" in error or "KeyMismatch" in error:
        return (
            prefix + "the client certificate and private key do not match "
            f"(FLEETBATCH_TEMPORAL_TLS_CERT={settings.temporal_tls_cert}, "
            f"FLEETBATCH_TEMPORAL_TLS_KEY={settings.temporal_tls_key})"
        )
    if "InvalidContentType" in error or "CorruptMessage" in error:
        return (
            prefix + "the server does not speak TLS there (a plaintext port?): connect to "
            "its TLS port, or unset the TLS settings for a plaintext one"
        )
    refused_cert = (
        "400 Bad Request" in error
        or "CertificateRequired" in error
        or re.search(r"AlertReceived\((HandshakeFailure|BadCertificate|UnknownCA)", error)
    )
    if tls and refused_cert:
        if not has_cert:
            return (
                prefix + "no client certificate: the server requires one (mTLS); set "
                f"{set_cert} to a client certificate its CA signed, and its key"
            )
        return (
            prefix + "the server refused the client certificate "
            f"({settings.temporal_tls_cert or 'of the profile'}): not signed by a CA it "
            "trusts, expired, or not for client authentication"
        )
    status = re.search(r'code: (Unauthenticated|PermissionDenied), message: "([^"]*)"', error)
    if status:
        credential = "the API key" if options.get("api_key") else "no API key (none set)"
        return (
            f"Temporal at {target} refused the connection ({status.group(1)}: "
            f"{status.group(2)}) with {credential}: check FLEETBATCH_TEMPORAL_API_KEY "
            "(or the client certificate) and that it may use namespace "
            f"{settings.temporal_namespace!r}"
        )
    return None


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
