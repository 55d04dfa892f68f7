"""A real TLS endpoint in front of a Temporal server: certificates made on the spot and
Debian's nginx terminating TLS (and mTLS) with ``grpc_pass`` to the server.

:func:`make_pki` writes a CA, a server certificate for ``127.0.0.1`` and
``localhost`` (in the subject alternative names, as rustls requires), a client
certificate signed by the same CA, and a second CA (the "wrong CA") with a client
certificate of its own (the "stranger"). :class:`Nginx` runs ``nginx`` in the
foreground with a prefix and a configuration of its own on free ports: one listener
with TLS, one that also requires a client certificate of the CA
(``ssl_verify_client on``), and one that requires an API key as Temporal Cloud does.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from external import unavailable


@dataclass(frozen=True)
class Pki:
    """Where :func:`make_pki` wrote its PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca: Path
    stranger_cert: Path
    stranger_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fleetbatch tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(directory: Path) -> Pki:
    """A CA, a server and a client certificate of it, and an unrelated CA with a
    client certificate of its own (the stranger), as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("fleetbatch test CA")
    server = _leaf(
        "localhost",
        ca,
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client = _leaf("fleetbatch-worker", ca, ExtendedKeyUsageOID.CLIENT_AUTH)
    wrong = _ca("some other CA")
    stranger = _leaf("stranger", wrong, ExtendedKeyUsageOID.CLIENT_AUTH)
    pki = Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        wrong_ca=directory / "wrong-ca.pem",
        stranger_cert=directory / "stranger.pem",
        stranger_key=directory / "stranger.key",
    )
    pki.ca.write_bytes(_pem(ca[0]))
    pki.server_cert.write_bytes(_pem(server[0]))
    _write_key(server[1], pki.server_key)
    pki.client_cert.write_bytes(_pem(client[0]))
    _write_key(client[1], pki.client_key)
    pki.wrong_ca.write_bytes(_pem(wrong[0]))
    pki.stranger_cert.write_bytes(_pem(stranger[0]))
    _write_key(stranger[1], pki.stranger_key)
    return pki


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_CONFIG = """\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    ssl_certificate {server_cert};
    ssl_certificate_key {server_key};
    ssl_protocols TLSv1.2 TLSv1.3;
    # Temporal's long polls hold a request up to ~70 s; many ride one connection.
    grpc_read_timeout 300s;
    grpc_send_timeout 300s;
    client_body_timeout 300s;
    keepalive_timeout 600s;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{tls_port} ssl http2;
        location / {{ grpc_pass grpc://{upstream}; }}
    }}
    server {{
        listen 127.0.0.1:{mtls_port} ssl http2;
        ssl_client_certificate {ca};
        ssl_verify_client on;
        location / {{ grpc_pass grpc://{upstream}; }}
    }}
    server {{
        # What Temporal Cloud's API-key endpoints check: "authorization: Bearer <key>".
        # A missing or wrong key gets a gRPC UNAUTHENTICATED status (trailers-only).
        listen 127.0.0.1:{api_key_port} ssl http2;
        location / {{
            if ($http_authorization != "Bearer {api_key}") {{ return 401; }}
            grpc_pass grpc://{upstream};
        }}
        error_page 401 = @unauthenticated;
        location @unauthenticated {{
            default_type application/grpc;
            add_header grpc-status 16 always;
            add_header grpc-message "invalid API key" always;
            return 200;
        }}
    }}
}}
"""


class Nginx:
    """``nginx`` in the foreground terminating TLS on ``tls_address``, mTLS on
    ``mtls_address`` and TLS with an API key (``api_key``, as a bearer token) on
    ``api_key_address``, passing gRPC on to ``upstream`` (``host:port``) in clear."""

    def __init__(self, prefix: Path, pki: Pki, upstream: str, api_key: str) -> None:
        self.prefix = prefix
        self.pki = pki
        self.upstream = upstream
        self.api_key = api_key
        self.tls_port = _free_port()
        self.mtls_port = _free_port()
        self.api_key_port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def tls_address(self) -> str:
        return f"127.0.0.1:{self.tls_port}"

    @property
    def mtls_address(self) -> str:
        return f"127.0.0.1:{self.mtls_port}"

    @property
    def api_key_address(self) -> str:
        return f"127.0.0.1:{self.api_key_port}"

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    def start(self) -> None:
        binary = shutil.which("nginx") or next(
            (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None
        )
        if binary is None:
            unavailable("nginx is not installed (Debian: apt-get install nginx-light)")
        self.prefix.mkdir(parents=True, exist_ok=True)
        config = self.prefix / "nginx.conf"
        config.write_text(
            _CONFIG.format(
                prefix=self.prefix,
                server_cert=self.pki.server_cert,
                server_key=self.pki.server_key,
                ca=self.pki.ca,
                tls_port=self.tls_port,
                mtls_port=self.mtls_port,
                api_key_port=self.api_key_port,
                api_key=self.api_key,
                upstream=self.upstream,
            )
        )
        # -e: the error log before the configuration is read (not /var/log/nginx).
        with (self.prefix / "stderr.log").open("wb") as stderr:
            self.proc = subprocess.Popen(
                [binary, "-p", str(self.prefix), "-c", str(config), "-e", str(self.error_log)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 15
        while not all(
            self._listening(port) for port in (self.tls_port, self.mtls_port, self.api_key_port)
        ):
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.logs()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not listen within 15 s:\n{self.logs()}")
            time.sleep(0.05)

    @staticmethod
    def _listening(port: int) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    def logs(self) -> str:
        parts = []
        for name in ("stderr.log", "error.log"):
            path = self.prefix / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: fast shutdown
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
