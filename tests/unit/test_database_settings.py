"""Database settings from the environment, TLS that verifies, and credentials (moto)."""

from __future__ import annotations

import json
import ssl
from typing import Any

import boto3
import certifi
import pytest
from pg8000.exceptions import DatabaseError, InterfaceError

from webchecker.exceptions import ConfigurationError
from webchecker.store.database import Credentials, DatabaseSettings, is_unavailable

AWS_DB = {"DB_HOST": "db.example.internal", "DB_NAME": "checks", "DB_USER": "writer"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://u:p%40ss@db.local:6543/checks",
            {"host": "db.local", "port": 6543, "database": "checks", "user": "u",
             "password": "p@ss", "unix_socket_dir": None, "tls": False},
        ),
        (
            "postgresql://postgres:@/postgres?host=/tmp/pg/data",
            {"host": None, "unix_socket_dir": "/tmp/pg/data", "database": "postgres",
             "user": "postgres", "password": None, "port": 5432},
        ),
        (
            f"postgres://u@db.local/checks?sslmode=verify-full&sslrootcert={certifi.where()}",
            {"tls": True, "ssl_root_cert": certifi.where(), "port": 5432},
        ),
        ("postgresql://u@db.local/checks?sslmode=require", {"tls": True}),
        ("postgresql://u@db.local/checks?sslmode=disable", {"tls": False}),
    ],
)  # fmt: skip
def test_database_url_forms(url: str, expected: dict[str, Any]) -> None:
    settings = DatabaseSettings.from_env({"DATABASE_URL": url})

    assert {name: getattr(settings, name) for name in expected} == expected
    assert settings.schema == "webchecker"
    assert "p@ss" not in repr(settings)


def test_aws_settings_always_verify_tls() -> None:
    settings = DatabaseSettings.from_env(
        {**AWS_DB, "DB_PORT": "5433", "DB_IAM_AUTH": "true", "DB_SCHEMA": "mon"}
    )

    assert (settings.host, settings.port, settings.database, settings.user) == (
        "db.example.internal", 5433, "checks", "writer",
    )  # fmt: skip
    assert (settings.iam_auth, settings.tls, settings.schema) == (True, True, "mon")
    assert settings.ssl_root_cert is None  # the system trust store, unless DB_SSL_ROOT_CERT
    context = settings.ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_local_settings_never_use_pg8000s_silent_fallback() -> None:
    settings = DatabaseSettings.from_env({"DATABASE_URL": "postgresql://u@localhost/db"})
    assert settings.ssl_context() is False  # plaintext on purpose, not "try TLS, then not"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DATABASE_URL"),
        ({**AWS_DB}, "DB_SECRET_ARN"),
        ({**AWS_DB, "DB_SECRET_ARN": "arn:x", "DB_IAM_AUTH": "true"}, "exactly one"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "postgresql://"),
        ({"DATABASE_URL": "postgresql://u@h/db", "DB_SCHEMA": "Bad-Name"}, "DB_SCHEMA"),
        ({"DATABASE_URL": "postgresql://u@h/db", "DB_TIMEOUT": "soon"}, "DB_TIMEOUT"),
        ({**AWS_DB, "DB_IAM_AUTH": "true", "DB_PORT": "99999"}, "DB_PORT"),
        ({**AWS_DB, "DB_IAM_AUTH": "true", "DB_SSL_ROOT_CERT": "/nowhere.pem"}, "no such file"),
    ],
)
def test_bad_configuration_fails_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DatabaseSettings.from_env(env)


def test_password_from_a_secrets_manager_secret(aws: None) -> None:
    client = boto3.client("secretsmanager")
    arn = client.create_secret(
        Name="webchecker/db", SecretString=json.dumps({"username": "writer", "password": "s3cr3t"})
    )["ARN"]
    settings = DatabaseSettings.from_env({**AWS_DB, "DB_SECRET_ARN": arn})

    assert Credentials(settings, secrets_client=client).password() == "s3cr3t"


def test_a_secret_without_a_password_is_a_configuration_error(aws: None) -> None:
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="webchecker/db", SecretString="plain text")["ARN"]
    settings = DatabaseSettings.from_env({**AWS_DB, "DB_SECRET_ARN": arn})

    with pytest.raises(ConfigurationError, match="password"):
        Credentials(settings, secrets_client=client).password()


def test_iam_auth_signs_a_token_for_host_port_and_user(aws: None) -> None:
    settings = DatabaseSettings.from_env({**AWS_DB, "DB_IAM_AUTH": "true"})

    token = Credentials(settings, rds_client=boto3.client("rds")).password()

    assert token is not None
    assert token.startswith("db.example.internal:5432/?Action=connect&DBUser=writer")
    assert "X-Amz-Signature=" in token


def _hidden(server_error: DatabaseError) -> InterfaceError:
    """A login refusal as pg8000 raises it: "network error" while closing the socket."""
    try:
        try:
            raise server_error
        except DatabaseError:
            try:
                raise BrokenPipeError()
            except OSError as pipe:
                raise InterfaceError("network error") from pipe
    except InterfaceError as error:
        return error


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (ConnectionRefusedError(), True),
        (FileNotFoundError(), True),
        (InterfaceError("network error"), True),
        (DatabaseError({"C": "57P01", "M": "terminating connection"}), True),
        (DatabaseError({"C": "08006", "M": "connection failure"}), True),
        (DatabaseError({"C": "53300", "M": "too many connections"}), True),
        (DatabaseError({"C": "23505", "M": "duplicate key"}), False),
        (_hidden(DatabaseError({"C": "28P01", "M": "password authentication failed"})), False),
        (ValueError("a bug"), False),
    ],
)
def test_which_errors_mean_unavailable(error: BaseException, unavailable: bool) -> None:
    assert is_unavailable(error) is unavailable
