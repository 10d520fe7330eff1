"""Kafka settings from the environment, client configuration and the MSK IAM token callback."""

from __future__ import annotations

import time

import pytest

from webchecker.check.transport import (
    DEFAULT_TOPIC,
    KafkaSettings,
    msk_iam_token_callback,
)
from webchecker.exceptions import ConfigurationError


def test_defaults() -> None:
    settings = KafkaSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})
    assert settings.topic == DEFAULT_TOPIC == "webchecker.checks"
    assert settings.auth == "none"
    assert settings.delivery_timeout_ms == 30_000
    assert settings.create_topic is True
    config = settings.producer_config()
    assert config["bootstrap.servers"] == "127.0.0.1:9092"
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["compression.type"] == "zstd"
    assert config["linger.ms"] == 200
    assert config["message.timeout.ms"] == 30_000
    assert "security.protocol" not in config  # plaintext for local brokers


def test_every_setting_comes_from_its_variable() -> None:
    settings = KafkaSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "b-1.msk:9098,b-2.msk:9098",
            "KAFKA_TOPIC": "checks.prod",
            "KAFKA_AUTH": "IAM",
            "AWS_REGION": "eu-central-1",
            "KAFKA_DELIVERY_TIMEOUT_MS": "15000",
            "KAFKA_COMPRESSION": "lz4",
            "KAFKA_LINGER_MS": "5",
            "KAFKA_CREATE_TOPIC": "false",
            "KAFKA_TOPIC_PARTITIONS": "12",
            "KAFKA_TOPIC_REPLICATION_FACTOR": "3",
            "KAFKA_TOPIC_RETENTION_MS": "86400000",
        }
    )
    assert settings == KafkaSettings(
        bootstrap_servers="b-1.msk:9098,b-2.msk:9098",
        topic="checks.prod",
        auth="iam",
        region="eu-central-1",
        delivery_timeout_ms=15_000,
        compression="lz4",
        linger_ms=5,
        create_topic=False,
        topic_partitions=12,
        topic_replication_factor=3,
        topic_retention_ms=86_400_000,
    )


def test_iam_uses_sasl_oauthbearer_over_tls() -> None:
    settings = KafkaSettings(bootstrap_servers="b-1.msk:9098", auth="iam", region="eu-west-1")
    config = settings.producer_config()
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanisms"] == "OAUTHBEARER"
    assert callable(config["oauth_cb"])
    assert config["ssl.ca.location"].endswith(".pem")


def test_the_iam_token_callback_returns_the_expiry_in_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The signer signs locally with whatever credentials it finds: no AWS call is made.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    token, expiry = msk_iam_token_callback("eu-west-1")("")
    assert token
    assert isinstance(token, str)
    now = time.time()
    assert now < expiry < now + 3600  # seconds since the epoch, not milliseconds


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "KAFKA_BOOTSTRAP_SERVERS is required"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "x:1", "KAFKA_AUTH": "scram"}, "KAFKA_AUTH"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "x:1", "KAFKA_AUTH": "iam"}, "AWS_REGION"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "x:1", "KAFKA_DELIVERY_TIMEOUT_MS": "10"}, "at least 1000"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "x:1", "KAFKA_DELIVERY_TIMEOUT_MS": "soon"}, "whole number"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "x:1", "KAFKA_COMPRESSION": "brotli"}, "KAFKA_COMPRESSION"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "x:1", "KAFKA_TOPIC_PARTITIONS": "0"}, "at least 1"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "x:1", "KAFKA_CREATE_TOPIC": "maybe"}, "true or false"),
        (
            {
                "KAFKA_BOOTSTRAP_SERVERS": "x:1",
                "KAFKA_DELIVERY_TIMEOUT_MS": "1000",
                "KAFKA_LINGER_MS": "2000",
            },
            "KAFKA_LINGER_MS",
        ),
    ],
)
def test_bad_settings_fail_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        KafkaSettings.from_env(env)
