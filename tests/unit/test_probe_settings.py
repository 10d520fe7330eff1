"""Probe settings from the environment, and parsing the checker's payload."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest

from webchecker.check.checker import CheckerEvent
from webchecker.check.probe import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_REDIRECTS,
    ProbeSettings,
)
from webchecker.exceptions import ConfigurationError, InvalidEvent


def test_defaults() -> None:
    settings = ProbeSettings.from_env({})
    assert settings == ProbeSettings()
    assert settings.concurrency == DEFAULT_CONCURRENCY == 100
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1024 * 1024
    assert settings.max_redirects == DEFAULT_MAX_REDIRECTS == 10
    assert settings.allow_private_targets is False  # the guard is on unless turned off
    assert settings.allowed_networks == ()
    assert settings.region is None


def test_every_setting_comes_from_its_variable() -> None:
    settings = ProbeSettings.from_env(
        {
            "CHECKER_CONCURRENCY": "25",
            "CHECKER_MAX_BODY_BYTES": "4096",
            "CHECKER_ALLOW_PRIVATE_TARGETS": "true",
            "CHECKER_ALLOWED_NETWORKS": "10.1.0.0/16, fd00:1::/64",
            "CHECKER_MAX_REDIRECTS": "3",
            "CHECKER_USER_AGENT": "probe/1",
            "AWS_REGION": "us-east-2",
        }
    )
    assert settings == ProbeSettings(
        concurrency=25,
        max_body_bytes=4096,
        allow_private_targets=True,
        allowed_networks=(
            ipaddress.ip_network("10.1.0.0/16"),
            ipaddress.ip_network("fd00:1::/64"),
        ),
        max_redirects=3,
        user_agent="probe/1",
        region="us-east-2",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHECKER_CONCURRENCY": "0"}, "CHECKER_CONCURRENCY"),
        ({"CHECKER_CONCURRENCY": "many"}, "CHECKER_CONCURRENCY"),
        ({"CHECKER_MAX_BODY_BYTES": "-1"}, "CHECKER_MAX_BODY_BYTES"),
        ({"CHECKER_ALLOW_PRIVATE_TARGETS": "sometimes"}, "CHECKER_ALLOW_PRIVATE_TARGETS"),
        ({"CHECKER_ALLOWED_NETWORKS": "10.0.0.0/8,everything"}, "CHECKER_ALLOWED_NETWORKS"),
        ({"CHECKER_MAX_REDIRECTS": "100"}, "CHECKER_MAX_REDIRECTS"),
        ({"CHECKER_CA_BUNDLE": "/nonexistent/ca.pem"}, "CHECKER_CA_BUNDLE"),
    ],
)
def test_bad_settings_fail_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ProbeSettings.from_env(env)


def test_the_payload_keeps_valid_sites_and_reports_invalid_ones_by_index() -> None:
    event = CheckerEvent.from_dict(
        {
            "scheduled_at": "2026-01-05T12:34:00Z",
            "sites": [
                {"id": "a", "url": "https://a.example/"},
                {"id": "b", "url": "ftp://b.example/"},
                "not an object",
                {"id": "a", "url": "https://a2.example/"},
                {"id": "c", "url": "https://c.example/", "interval": 120, "timeout": 5},
            ],
        }
    )
    assert event.scheduled_at == datetime(2026, 1, 5, 12, 34, tzinfo=UTC)
    assert [site.id for site in event.sites] == ["a", "c"]
    assert [index for index, _reason in event.invalid] == [1, 2, 3]
    reasons = dict(event.invalid)
    assert "url" in reasons[1]
    assert "JSON object" in reasons[2]
    assert "more than once" in reasons[3]


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        {"sites": []},
        {"scheduled_at": 1767616440, "sites": []},
        {"scheduled_at": "2026-01-05T12:34:00", "sites": []},  # no offset
        {"scheduled_at": "2026-01-05T12:34:00Z", "sites": "a,b"},
    ],
)
def test_a_malformed_payload_is_an_invalid_event(event: object) -> None:
    with pytest.raises(InvalidEvent):
        CheckerEvent.from_dict(event)
