"""The PostgreSQL connection: settings, TLS, credentials, and one reused connection.

Two ways to say where the database is:

- ``DATABASE_URL``: ``postgresql://user:password@host:port/dbname``, or the unix-socket form
  ``postgresql://user@/dbname?host=/socket/dir`` that embedded servers give. TLS only when
  the URL asks for it (``?sslmode=require|verify-ca|verify-full``; all three verify).
- In AWS: ``DB_HOST``, ``DB_PORT``, ``DB_NAME``, ``DB_USER`` and either ``DB_SECRET_ARN``
  (a Secrets Manager secret with ``password``, as RDS writes it) or ``DB_IAM_AUTH=true``
  (an RDS IAM token per connection). Always TLS with certificate verification, against
  ``DB_SSL_ROOT_CERT`` (the RDS CA bundle) when set, else the system trust store.

The database named in the settings is created when it does not exist. A ``Database`` keeps
one connection per container and reconnects after a failure; pg8000 errors that mean "the
server is unreachable or the connection broke" become ``StoreUnavailable``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import ssl
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

import pg8000.exceptions
import pg8000.native

from webchecker.config import env_bool, env_float, env_int, env_optional, env_str
from webchecker.exceptions import ConfigurationError, StoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

logger = logging.getLogger(__name__)

DEFAULT_SCHEMA = "webchecker"
DEFAULT_PORT = 5432
DEFAULT_TIMEOUT = 30.0  # socket timeout for connect and every statement
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_VERIFYING_SSLMODES = {"require", "verify-ca", "verify-full"}
# SQLSTATE classes and codes that mean "not reachable now, try again later"
_UNAVAILABLE_CLASSES = ("08", "53", "57P")
_INVALID_CATALOG_NAME = "3D000"
_DUPLICATE_DATABASE = "42P04"
_UNIQUE_VIOLATION = "23505"


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier (double-quoted)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    """Where the database is and how to log in. ``from_env()`` or ``from_url()``."""

    database: str
    user: str
    host: str | None = None
    port: int = DEFAULT_PORT
    unix_socket_dir: str | None = None
    password: str | None = field(default=None, repr=False)
    secret_arn: str | None = None
    iam_auth: bool = False
    tls: bool = False
    ssl_root_cert: str | None = None
    region: str | None = None
    schema: str = DEFAULT_SCHEMA
    timeout: float = DEFAULT_TIMEOUT
    application_name: str = "webchecker"

    def __post_init__(self) -> None:
        if not _IDENTIFIER.fullmatch(self.schema):
            raise ConfigurationError(
                f"DB_SCHEMA={self.schema!r}: expected a lower-case identifier ([a-z_][a-z0-9_]*)"
            )
        if self.host is None and self.unix_socket_dir is None:
            raise ConfigurationError("database settings need a host or a unix socket directory")
        if self.ssl_root_cert is not None and not os.path.isfile(self.ssl_root_cert):
            raise ConfigurationError(
                f"DB_SSL_ROOT_CERT={self.ssl_root_cert}: no such file (the CA bundle, e.g. RDS's)"
            )

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> DatabaseSettings:
        """Settings from a ``postgresql://`` URL (``?host=/dir`` selects a unix socket)."""
        parts = urlsplit(url)
        if parts.scheme not in {"postgres", "postgresql"}:
            raise ConfigurationError("DATABASE_URL: expected a postgresql:// URL")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        socket_dir = query.get("host") if query.get("host", "").startswith("/") else None
        try:
            port = parts.port or int(query.get("port", DEFAULT_PORT))
        except ValueError:
            raise ConfigurationError("DATABASE_URL: the port is not a number") from None
        values: dict[str, Any] = {
            "database": unquote(parts.path.lstrip("/")) or "postgres",
            "user": unquote(parts.username or "postgres"),
            "password": unquote(parts.password) if parts.password else None,
            "host": None if socket_dir else (parts.hostname or query.get("host") or "localhost"),
            "port": port,
            "unix_socket_dir": socket_dir,
            "tls": query.get("sslmode", "disable") in _VERIFYING_SSLMODES,
            "ssl_root_cert": query.get("sslrootcert"),
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DatabaseSettings:
        """``DATABASE_URL`` if set, else the ``DB_*`` variables (AWS: always verified TLS)."""
        common: dict[str, Any] = {
            "schema": env_str("DB_SCHEMA", DEFAULT_SCHEMA, env),
            "timeout": env_float("DB_TIMEOUT", DEFAULT_TIMEOUT, env, minimum=0.1),
        }
        url = env_optional("DATABASE_URL", env)
        if url:
            return cls.from_url(url, **common)
        host = env_optional("DB_HOST", env)
        if host is None:
            raise ConfigurationError("set DATABASE_URL, or DB_HOST with DB_NAME and DB_USER")
        secret_arn = env_optional("DB_SECRET_ARN", env)
        iam_auth = env_bool("DB_IAM_AUTH", False, env)
        if (secret_arn is None) == (not iam_auth):
            raise ConfigurationError("set exactly one of DB_SECRET_ARN and DB_IAM_AUTH=true")
        return cls(
            host=host,
            port=env_int("DB_PORT", DEFAULT_PORT, env, minimum=1, maximum=65535),
            database=env_str("DB_NAME", "webchecker", env),
            user=env_str("DB_USER", "webchecker", env),
            secret_arn=secret_arn,
            iam_auth=iam_auth,
            tls=True,
            ssl_root_cert=env_optional("DB_SSL_ROOT_CERT", env),
            region=env_optional("AWS_REGION", env) or env_optional("AWS_DEFAULT_REGION", env),
            **common,
        )

    def for_database(self, database: str) -> DatabaseSettings:
        return replace(self, database=database)

    def ssl_context(self) -> ssl.SSLContext | bool:
        """A verifying context when TLS is on; ``False`` (never pg8000's silent fallback)."""
        if not self.tls:
            return False
        context = ssl.create_default_context(cafile=self.ssl_root_cert)
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def describe(self) -> str:
        """Where the database is, as a URL without any password (for messages)."""
        if self.unix_socket_dir:
            return f"postgresql://{self.user}@/{self.database}?host={self.unix_socket_dir}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def unavailable(self, error: BaseException) -> StoreUnavailable:
        """The error for a server that cannot be reached: where, why, what to check."""
        return StoreUnavailable(
            f"database unavailable at {self.describe()}: {error} (is the server running, "
            "and are DATABASE_URL or DB_HOST/DB_PORT/DB_NAME right?)"
        )


def redact_url(url: str) -> str:
    """``url`` with any password (in the user info or a ``password=`` query) as ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    query = parse_qs(parts.query, keep_blank_values=True)
    if "password" in query:
        query["password"] = ["***"]
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, doseq=True)))
    return urlunsplit(parts._replace(netloc=netloc))


class Credentials:
    """Resolves the password: given, from Secrets Manager, or an RDS IAM token."""

    def __init__(
        self,
        settings: DatabaseSettings,
        *,
        secrets_client: SecretsManagerClient | None = None,
        rds_client: RDSClient | None = None,
    ) -> None:
        self._settings = settings
        self._secrets_client = secrets_client
        self._rds_client = rds_client

    def password(self) -> str | None:
        settings = self._settings
        if settings.iam_auth:
            if self._rds_client is None:
                import boto3

                self._rds_client = boto3.client("rds", region_name=settings.region)
            # tokens live 15 minutes and are only checked at login: one per connection
            return self._rds_client.generate_db_auth_token(
                DBHostname=settings.host or "",
                Port=settings.port,
                DBUsername=settings.user,
                Region=settings.region or self._rds_client.meta.region_name,
            )
        if settings.secret_arn:
            if self._secrets_client is None:
                import boto3

                self._secrets_client = boto3.client("secretsmanager", region_name=settings.region)
            # fetched at every (re)connect, so a rotated password is picked up
            secret = self._secrets_client.get_secret_value(SecretId=settings.secret_arn)
            try:
                password: str = json.loads(secret["SecretString"])["password"]
            except (KeyError, ValueError, TypeError):
                raise ConfigurationError(
                    f"DB_SECRET_ARN={settings.secret_arn}: expected a JSON secret with 'password'"
                ) from None
            return password
        return settings.password


def server_error(error: BaseException) -> pg8000.exceptions.DatabaseError | None:
    """The server's error behind ``error``, if any.

    When the server refuses a login (FATAL) it closes the socket, and pg8000's cleanup may
    then raise "network error" while handling it: the server's reason is in the chain.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, pg8000.exceptions.DatabaseError):
            return current
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE code of the server's error behind ``error``, e.g. ``23505``."""
    found = server_error(error)
    detail = found.args[0] if found is not None and found.args else None
    if isinstance(detail, dict):
        code = detail.get("C")
        return str(code) if code is not None else None
    return None


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the server cannot be reached or the connection broke."""
    code = sqlstate(error)
    if code is not None:
        return code.startswith(_UNAVAILABLE_CLASSES)
    return isinstance(error, pg8000.exceptions.InterfaceError | OSError | struct.error | EOFError)


class Statement:
    """SQL with ``:name`` parameters, converted for pg8000 once instead of at every call.

    pg8000's ``run()`` re-parses the SQL text on every call with a Python loop over its
    characters: about 0.5 ms for the writer's long COPY and rollup statements, which run
    for every batch (5-10% of a 500-row batch).
    """

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self._statement, self._make_values = pg8000.native.to_statement(sql)

    def run(
        self, connection: pg8000.native.Connection, *, stream: Any = None, **params: Any
    ) -> int:
        """Runs it on ``connection``; the number of rows it affected (or copied)."""
        context = connection.execute_unnamed(
            self._statement, self._make_values(params), stream=stream
        )
        return int(context.row_count)

    def rows(self, connection: pg8000.native.Connection, **params: Any) -> list[list[Any]]:
        """Runs it on ``connection``; the rows it returned."""
        context = connection.execute_unnamed(self._statement, self._make_values(params))
        return list(context.rows or ())

    def __repr__(self) -> str:
        return f"Statement({self.sql!r})"


def _open(settings: DatabaseSettings, password: str | None) -> pg8000.native.Connection:
    unix_sock = (
        f"{settings.unix_socket_dir}/.s.PGSQL.{settings.port}" if settings.unix_socket_dir else None
    )
    connection = pg8000.native.Connection(
        settings.user,
        host=settings.host or "localhost",
        port=settings.port,
        database=settings.database,
        password=password,
        unix_sock=unix_sock,
        ssl_context=settings.ssl_context(),
        timeout=settings.timeout,
        application_name=settings.application_name,
        tcp_keepalive=True,
    )
    # As libpq does: without TCP_NODELAY, Nagle's algorithm holds the tail of a COPY until
    # the server's delayed ACK (~40 ms a batch over TCP; pg8000 does not set it)
    sock = getattr(connection, "_usock", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def connect(settings: DatabaseSettings, credentials: Credentials) -> pg8000.native.Connection:
    """A new connection; creates the database first when it does not exist."""
    try:
        return _open(settings, credentials.password())
    except Exception as error:
        if sqlstate(error) != _INVALID_CATALOG_NAME:
            raise _convert(error, settings) from error
    create_database(settings, credentials)
    try:
        return _open(settings, credentials.password())
    except Exception as error:
        raise _convert(error, settings) from error


def create_database(settings: DatabaseSettings, credentials: Credentials) -> None:
    """``CREATE DATABASE`` through the ``postgres`` maintenance database; a race is fine."""
    logger.info("creating database %s", settings.database)
    try:
        admin = _open(settings.for_database("postgres"), credentials.password())
    except Exception as error:
        raise _convert(error, settings) from error
    try:
        admin.run(f"CREATE DATABASE {quote_identifier(settings.database)}")
    except pg8000.exceptions.DatabaseError as error:
        # another writer created it between our two connects
        if sqlstate(error) not in {_DUPLICATE_DATABASE, _UNIQUE_VIOLATION}:
            raise _convert(error, settings) from error
    finally:
        with contextlib.suppress(Exception):
            admin.close()


def _convert(error: BaseException, settings: DatabaseSettings) -> BaseException:
    """A connect error as we raise it: TLS trouble is configuration, not an outage."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return ConfigurationError(
            f"database TLS: {error.verify_message} (set DB_SSL_ROOT_CERT to the CA bundle, "
            "e.g. RDS's, and connect by the name on the certificate)"
        )
    if isinstance(error, pg8000.exceptions.InterfaceError) and "refuses SSL" in str(error):
        return ConfigurationError("database TLS: the server does not offer TLS")
    if is_unavailable(error):
        return settings.unavailable(error)
    return error


class Database:
    """One connection per container, opened on first use and re-opened after a failure."""

    def __init__(
        self, settings: DatabaseSettings, *, credentials: Credentials | None = None
    ) -> None:
        self.settings = settings
        self._credentials = credentials or Credentials(settings)
        self._connection: pg8000.native.Connection | None = None

    @property
    def schema(self) -> str:
        return self.settings.schema

    @property
    def connected(self) -> bool:
        """True when a connection is open (it may still turn out to be broken)."""
        return self._connection is not None

    def connection(self) -> pg8000.native.Connection:
        if self._connection is None:
            self._connection = connect(self.settings, self._credentials)
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[pg8000.native.Connection]:
        """A transaction on the shared connection: commit on success, roll back on error.

        When the connection is broken the error becomes ``StoreUnavailable`` and the next
        call reconnects.
        """
        connection = self.connection()
        try:
            connection.run("BEGIN")
            yield connection
            connection.run("COMMIT")
        except BaseException as error:
            self._rollback_or_drop(connection, error)
            if is_unavailable(error):
                raise self.settings.unavailable(error) from error
            raise

    def _rollback_or_drop(self, connection: pg8000.native.Connection, error: BaseException) -> None:
        if is_unavailable(error):
            self.close()
            return
        try:
            connection.run("ROLLBACK")
        except Exception:
            self.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
