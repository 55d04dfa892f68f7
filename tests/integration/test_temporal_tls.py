"""TLS, mTLS and API keys to Temporal, proven against a real TLS endpoint: Debian's
nginx terminating TLS in front of the dev server (``grpc_pass``), with certificates
made by the test (tests/tls_endpoint.py). Every client here is made by fleetbatch's
own ``connect`` (what the worker, the API and the CLI use) or by the CLI itself; the
failures must be one clear sentence naming the address and what failed."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from fleetbatch.config import Settings
from fleetbatch.errors import ConfigError, TemporalUnavailableError
from fleetbatch.temporal import DevServer
from fleetbatch.temporal.connect import connect
from tls_endpoint import Nginx, Pki, make_pki

pytestmark = pytest.mark.integration

API_KEY = "fleetbatch-test-key-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def nginx(
    dev_server: DevServer, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Nginx]:
    proxy = Nginx(tmp_path_factory.mktemp("nginx"), pki, dev_server.address, API_KEY)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(autouse=True)
def _no_temporal_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing of the machine's Temporal or fleetbatch configuration leaks in."""
    for name in list(os.environ):
        if name.startswith(("TEMPORAL_", "FLEETBATCH_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLEETBATCH_ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))


def settings(address: str, **kw: object) -> Settings:
    return Settings(temporal_address=address, **kw)  # type: ignore[arg-type]


@workflow.defn(sandboxed=False)
class Echo:
    @workflow.run
    async def run(self, text: str) -> str:
        return f"echo: {text}"


async def round_trip(client: Client) -> None:
    """A namespace description and a workflow run by a worker polling through the proxy."""
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="default")
    )
    assert described.namespace_info.name == "default"
    task_queue = f"tls-{uuid.uuid4().hex}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[Echo],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        result = await client.execute_workflow(
            Echo.run, "over TLS", id=f"tls-{uuid.uuid4().hex}", task_queue=task_queue
        )
    assert result == "echo: over TLS"


def one_clear_line(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message and len(message) < 600, message


# --- what works --------------------------------------------------------------------------


async def test_tls_with_the_ca_runs_a_workflow(nginx: Nginx, pki: Pki) -> None:
    client = await connect(settings(nginx.tls_address, temporal_tls_ca=pki.ca))
    await round_trip(client)


async def test_mtls_with_a_client_certificate_runs_a_workflow(nginx: Nginx, pki: Pki) -> None:
    client = await connect(
        settings(
            nginx.mtls_address,
            temporal_tls_ca=pki.ca,
            temporal_tls_cert=pki.client_cert,
            temporal_tls_key=pki.client_key,
        )
    )
    await round_trip(client)


async def test_an_api_key_is_sent_as_a_bearer_token(nginx: Nginx, pki: Pki) -> None:
    client = await connect(
        settings(nginx.api_key_address, temporal_tls_ca=pki.ca, temporal_api_key=API_KEY)
    )
    await round_trip(client)


# --- what fails, and how it says so --------------------------------------------------------


async def test_a_wrong_ca_fails_with_certificate_verify_failed(nginx: Nginx, pki: Pki) -> None:
    with pytest.raises(ConfigError) as failed:
        await connect(settings(nginx.tls_address, temporal_tls_ca=pki.wrong_ca))
    message = str(failed.value)
    assert message == (
        f"TLS to Temporal at {nginx.tls_address} failed: certificate verify failed: the "
        "server's certificate is not signed by the CA certificate of "
        f"FLEETBATCH_TEMPORAL_TLS_CA ({pki.wrong_ca})"
    )


async def test_system_roots_do_not_trust_a_private_ca(nginx: Nginx) -> None:
    with pytest.raises(ConfigError) as failed:
        await connect(settings(nginx.tls_address, temporal_tls=True))
    message = str(failed.value)
    one_clear_line(message)
    assert message.startswith(f"TLS to Temporal at {nginx.tls_address} failed: certificate")
    assert "system's trusted CAs (set FLEETBATCH_TEMPORAL_TLS_CA" in message


async def test_no_client_certificate_against_mtls(nginx: Nginx, pki: Pki) -> None:
    with pytest.raises(ConfigError) as failed:
        await connect(settings(nginx.mtls_address, temporal_tls_ca=pki.ca))
    assert str(failed.value) == (
        f"TLS to Temporal at {nginx.mtls_address} failed: no client certificate: the server "
        "requires one (mTLS); set FLEETBATCH_TEMPORAL_TLS_CERT and FLEETBATCH_TEMPORAL_TLS_KEY "
        "to a client certificate its CA signed, and its key"
    )


async def test_a_client_certificate_of_another_ca_is_refused(nginx: Nginx, pki: Pki) -> None:
    with pytest.raises(ConfigError) as failed:
        await connect(
            settings(
                nginx.mtls_address,
                temporal_tls_ca=pki.ca,
                temporal_tls_cert=pki.stranger_cert,
                temporal_tls_key=pki.stranger_key,
            )
        )
    message = str(failed.value)
    one_clear_line(message)
    assert message.startswith(
        f"TLS to Temporal at {nginx.mtls_address} failed: the server refused the client "
        f"certificate ({pki.stranger_cert})"
    )


async def test_a_key_of_another_certificate(nginx: Nginx, pki: Pki) -> None:
    with pytest.raises(ConfigError, match="client certificate and private key do not match"):
        await connect(
            settings(
                nginx.mtls_address,
                temporal_tls_ca=pki.ca,
                temporal_tls_cert=pki.client_cert,
                temporal_tls_key=pki.stranger_key,
            )
        )


async def test_a_wrong_api_key_is_unauthenticated(nginx: Nginx, pki: Pki) -> None:
    with pytest.raises(ConfigError) as failed:
        await connect(
            settings(nginx.api_key_address, temporal_tls_ca=pki.ca, temporal_api_key="wrong")
        )
    message = str(failed.value)
    one_clear_line(message)
    assert message.startswith(
        f"Temporal at {nginx.api_key_address} refused the connection (Unauthenticated: "
        "invalid API key) with the API key"
    )


async def test_tls_to_a_plaintext_port(dev_server: DevServer, pki: Pki) -> None:
    with pytest.raises(ConfigError) as failed:
        await connect(settings(dev_server.address, temporal_tls_ca=pki.ca))
    assert str(failed.value).startswith(
        f"TLS to Temporal at {dev_server.address} failed: the server does not speak TLS there"
    )


async def test_plaintext_to_a_tls_port_hints_at_tls(nginx: Nginx) -> None:
    # Not a ConfigError: a server that is starting may answer the same way.
    with pytest.raises(TemporalUnavailableError, match="set FLEETBATCH_TEMPORAL_TLS=true"):
        await connect(settings(nginx.tls_address))


async def test_an_unreadable_ca_file(nginx: Nginx, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError) as failed:
        await connect(settings(nginx.tls_address, temporal_tls_ca=missing))
    assert str(failed.value) == (
        f"FLEETBATCH_TEMPORAL_TLS_CA: cannot read {missing}: No such file or directory"
    )


# --- the CLI and the worker ---------------------------------------------------------------


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETBATCH_", "TEMPORAL_"))}
    return env | {
        "FLEETBATCH_ENV_FILE": str(tmp_path / "absent.env"),
        "FLEETBATCH_DATA_DIR": str(tmp_path / "data"),
        "FLEETBATCH_METRICS_ADDRESS": "",
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "absent.toml"),
        **extra,
    }


async def fleetbatch(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetbatch.cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_cli_over_mtls(nginx: Nginx, pki: Pki, tmp_path: Path) -> None:
    code, out = await fleetbatch(
        cli_env(
            tmp_path,
            FLEETBATCH_TEMPORAL_ADDRESS=nginx.mtls_address,
            FLEETBATCH_TEMPORAL_TLS_CA=str(pki.ca),
            FLEETBATCH_TEMPORAL_TLS_CERT=str(pki.client_cert),
            FLEETBATCH_TEMPORAL_TLS_KEY=str(pki.client_key),
        ),
        *("rate", "show"),
    )
    assert code == 0, out
    assert "lock_doors" in out


async def test_cli_with_an_api_key_alone_uses_tls(nginx: Nginx, pki: Pki, tmp_path: Path) -> None:
    """An API key turns TLS on with the system's CAs (SSL_CERT_FILE stands in for them)."""
    code, out = await fleetbatch(
        cli_env(
            tmp_path,
            FLEETBATCH_TEMPORAL_ADDRESS=nginx.api_key_address,
            FLEETBATCH_TEMPORAL_API_KEY=API_KEY,
            SSL_CERT_FILE=str(pki.ca),
        ),
        *("rate", "show"),
    )
    assert code == 0, out
    assert "lock_doors" in out


async def test_cli_with_a_wrong_ca_prints_the_error(nginx: Nginx, pki: Pki, tmp_path: Path) -> None:
    code, out = await fleetbatch(
        cli_env(
            tmp_path,
            FLEETBATCH_TEMPORAL_ADDRESS=nginx.tls_address,
            FLEETBATCH_TEMPORAL_TLS_CA=str(pki.wrong_ca),
        ),
        *("status", "b-none", "--once"),
    )
    assert code == 1, out
    assert out.strip() == (
        f"error: TLS to Temporal at {nginx.tls_address} failed: certificate verify failed: "
        "the server's certificate is not signed by the CA certificate of "
        f"FLEETBATCH_TEMPORAL_TLS_CA ({pki.wrong_ca})"
    )


async def test_cli_without_a_client_certificate_prints_the_error(
    nginx: Nginx, pki: Pki, tmp_path: Path
) -> None:
    code, out = await fleetbatch(
        cli_env(
            tmp_path,
            FLEETBATCH_TEMPORAL_ADDRESS=nginx.mtls_address,
            FLEETBATCH_TEMPORAL_TLS_CA=str(pki.ca),
        ),
        *("rate", "show"),
    )
    assert code == 1, out
    assert out.strip().startswith(
        f"error: TLS to Temporal at {nginx.mtls_address} failed: no client certificate"
    )
    assert "Traceback" not in out


async def test_a_worker_with_a_wrong_ca_exits_at_once(
    nginx: Nginx, pki: Pki, tmp_path: Path
) -> None:
    """Not retried like an unreachable server: waiting would never help."""
    code, out = await fleetbatch(
        cli_env(
            tmp_path,
            FLEETBATCH_TEMPORAL_ADDRESS=nginx.tls_address,
            FLEETBATCH_TEMPORAL_TLS_CA=str(pki.wrong_ca),
        ),
        "worker",
        timeout=90,
    )
    assert code == 1, out
    assert "certificate verify failed" in out
    assert "Traceback" not in out
    assert "waiting for Temporal" not in out


# --- Temporal's env-config profiles -------------------------------------------------------


def write_profiles(path: Path, nginx: Nginx, pki: Pki) -> Path:
    path.write_text(
        f"""\
[profile.mtls]
address = "{nginx.mtls_address}"
namespace = "default"
[profile.mtls.tls]
server_ca_cert_path = "{pki.ca}"
client_cert_path = "{pki.client_cert}"
client_key_path = "{pki.client_key}"

[profile.wrong-ca]
address = "{nginx.tls_address}"
[profile.wrong-ca.tls]
server_ca_cert_path = "{pki.wrong_ca}"

[profile.other-name]
address = "{nginx.tls_address}"
[profile.other-name.tls]
server_ca_cert_path = "{pki.ca}"
server_name = "temporal.example.com"

[profile.cloud-like]
address = "{nginx.api_key_address}"
api_key = "{API_KEY}"
[profile.cloud-like.tls]
server_ca_cert_path = "{pki.ca}"
"""
    )
    return path


async def test_a_profile_holds_the_connection(
    nginx: Nginx, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(write_profiles(tmp_path / "t.toml", nginx, pki)))
    for profile in ("mtls", "cloud-like"):
        s = Settings(temporal_profile=profile)
        assert not s.embedded_temporal
        assert s.effective_temporal_address in (nginx.mtls_address, nginx.api_key_address)
        await round_trip(await connect(s))


async def test_a_profile_with_a_wrong_ca_names_the_profile(
    nginx: Nginx, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(write_profiles(tmp_path / "t.toml", nginx, pki)))
    with pytest.raises(ConfigError) as failed:
        await connect(Settings(temporal_profile="wrong-ca"))
    assert str(failed.value) == (
        f"TLS to Temporal at {nginx.tls_address} failed: certificate verify failed: the "
        "server's certificate is not signed by the CA certificate of Temporal profile "
        "'wrong-ca'"
    )


async def test_a_certificate_for_other_names(
    nginx: Nginx, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(write_profiles(tmp_path / "t.toml", nginx, pki)))
    with pytest.raises(ConfigError) as failed:
        await connect(Settings(temporal_profile="other-name"))
    assert str(failed.value) == (
        f"TLS to Temporal at {nginx.tls_address} failed: certificate verify failed: the "
        "server's certificate is not valid for 'temporal.example.com' (it is for localhost, "
        "127.0.0.1); connect by one of its names (or, in a Temporal profile, set "
        "tls.server_name to one)"
    )


async def test_env_overrides_a_profile_as_the_sdk_documents(
    nginx: Nginx, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TEMPORAL_* variables win over the file (here: the wrong CA replaced)."""
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(write_profiles(tmp_path / "t.toml", nginx, pki)))
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(pki.ca))
    await round_trip(await connect(Settings(temporal_profile="wrong-ca")))


async def test_cli_with_a_profile(nginx: Nginx, pki: Pki, tmp_path: Path) -> None:
    profiles = write_profiles(tmp_path / "t.toml", nginx, pki)
    env = cli_env(tmp_path, TEMPORAL_CONFIG_FILE=str(profiles))
    code, out = await fleetbatch(env | {"FLEETBATCH_TEMPORAL_PROFILE": "mtls"}, "rate", "show")
    assert code == 0, out
    assert "lock_doors" in out
    code, out = await fleetbatch(env | {"FLEETBATCH_TEMPORAL_PROFILE": "wrong-ca"}, "rate", "show")
    assert code == 1, out
    assert out.strip().startswith(
        f"error: TLS to Temporal at {nginx.tls_address} failed: certificate verify failed"
    )


def test_a_profile_and_our_own_connection_settings_contradict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles = tmp_path / "t.toml"
    profiles.write_text('[profile.p]\naddress = "127.0.0.1:1"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(profiles))
    with pytest.raises(ConfigError) as failed:
        Settings(temporal_profile="p", temporal_address="x:7233", temporal_api_key="k")
    assert str(failed.value) == (
        "temporal_profile 'p' and FLEETBATCH_TEMPORAL_ADDRESS, FLEETBATCH_TEMPORAL_API_KEY "
        "contradict each other: the profile holds the connection; set it there (or unset "
        "the profile)"
    )
    with pytest.raises(ConfigError, match=r"Temporal profile 'nope' \(in .*t\.toml\): .*not found"):
        Settings(temporal_profile="nope")
    profiles.write_text('[profile.p]\nnamespace = "n"\n')
    with pytest.raises(ConfigError, match=r"Temporal profile 'p' .* has no address"):
        Settings(temporal_profile="p")
