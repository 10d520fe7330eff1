"""TLS to PostgreSQL is verified or refused, never quietly plaintext: a TLS front on
127.0.0.1 (the embedded build has no TLS) with certificates made by the test."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webchecker.exceptions import ConfigurationError
from webchecker.local.embedded.network import free_port
from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.store.database import Credentials, Database, DatabaseSettings

pytestmark = pytest.mark.postgres


class TlsFrontend:
    """TLS in front of PostgreSQL on 127.0.0.1, as RDS Proxy puts it in front of RDS.

    The embedded server is built without TLS, so this answers PostgreSQL's SSLRequest,
    does the handshake with the test's certificate, and passes the decrypted protocol on
    to the server's unix socket.
    """

    def __init__(self, backend: Path, context: ssl.SSLContext) -> None:
        self.backend = backend
        self.context = context
        self.handshakes = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, client: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(client)
            if client.recv(8) != struct.pack("!ii", 8, 80877103):  # SSLRequest
                return
            client.sendall(b"S")
            try:
                secure = self.context.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate
            stack.enter_context(secure)
            self.handshakes += 1
            backend = stack.enter_context(socket.socket(socket.AF_UNIX))
            backend.connect(str(self.backend))
            upstream = threading.Thread(target=_pipe, args=(secure, backend), daemon=True)
            upstream.start()
            _pipe(backend, secure)
            upstream.join(timeout=5)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@dataclass(frozen=True)
class TlsServer:
    frontend: TlsFrontend
    ca_file: Path

    def url(self, host: str = "localhost", query: str = "") -> str:
        return f"postgresql://postgres@{host}:{self.frontend.port}/postgres{query}"


def _certificate(
    subject: str, issuer: x509.Name | None, key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey, *, ca: bool, names: list[x509.GeneralName],
) -> x509.Certificate:  # fmt: skip
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    directory = Path(tempfile.mkdtemp(prefix="webchecker-tls-"))
    parent = Path(tempfile.mkdtemp(prefix="webchecker-pg-"))
    try:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("webchecker test CA", None, ca_key, ca_key, ca=True, names=[])
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        cert = _certificate("localhost", ca.subject, key, ca_key, ca=False, names=names)
        (directory / "server.pem").write_bytes(
            _pem(cert)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        ca_file = directory / "ca.pem"
        ca_file.write_bytes(_pem(ca))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / "server.pem")
        with EmbeddedPostgres(parent / "data") as server:
            frontend = TlsFrontend(server.socket_dir / f".s.PGSQL.{server.port}", context)
            try:
                yield TlsServer(frontend=frontend, ca_file=ca_file)
            finally:
                frontend.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(parent, ignore_errors=True)


def connects(settings: DatabaseSettings) -> bool:
    with Database(settings) as database:
        return bool(database.connection().run("SELECT 1") == [[1]])


def test_a_certificate_from_the_configured_ca_is_verified_and_used(
    tls_server: TlsServer,
) -> None:
    before = tls_server.frontend.handshakes
    settings = DatabaseSettings.from_url(
        tls_server.url("localhost", f"?sslmode=verify-full&sslrootcert={tls_server.ca_file}")
    )

    assert connects(settings)
    assert tls_server.frontend.handshakes == before + 1


def test_the_aws_settings_verify_against_db_ssl_root_cert(
    tls_server: TlsServer, aws_environment: None
) -> None:
    settings = DatabaseSettings.from_env(
        {
            "DB_HOST": "localhost",
            "DB_PORT": str(tls_server.frontend.port),
            "DB_NAME": "postgres",
            "DB_USER": "postgres",
            "DB_IAM_AUTH": "true",
            "DB_SSL_ROOT_CERT": str(tls_server.ca_file),
        }
    )
    # the embedded server trusts local logins: the IAM token is sent and ignored
    credentials = Credentials(settings, rds_client=boto3.client("rds"))

    with Database(settings, credentials=credentials) as database:
        assert database.connection().run("SELECT current_user") == [["postgres"]]


def test_a_certificate_the_trust_store_does_not_know_is_refused(tls_server: TlsServer) -> None:
    settings = DatabaseSettings.from_url(tls_server.url(query="?sslmode=verify-full"))

    with pytest.raises(ConfigurationError, match="certificate"):
        connects(settings)


def test_a_certificate_for_another_name_is_refused(tls_server: TlsServer) -> None:
    # the certificate names localhost, not 127.0.0.1 (the same server)
    settings = DatabaseSettings.from_url(
        tls_server.url("127.0.0.1", f"?sslmode=verify-full&sslrootcert={tls_server.ca_file}")
    )

    with pytest.raises(ConfigurationError, match="mismatch"):
        connects(settings)


def test_a_server_without_tls_is_refused_rather_than_used_in_plaintext() -> None:
    parent = Path(tempfile.mkdtemp(prefix="webchecker-pg-"))
    try:
        with EmbeddedPostgres(parent / "data", tcp_port=free_port()) as plain:
            plaintext = DatabaseSettings.from_url(plain.tcp_url())
            required = DatabaseSettings.from_url(f"{plain.tcp_url()}?sslmode=require")

            assert connects(plaintext)  # local development: plaintext on purpose
            with pytest.raises(ConfigurationError, match="does not offer TLS"):
                connects(required)
    finally:
        shutil.rmtree(parent, ignore_errors=True)
