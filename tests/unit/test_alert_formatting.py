"""Subjects, attributes and chat posts derived from alerts, including hostile alerts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webchecker.alert.formatting import (
    MAX_SUBJECT,
    duration_text,
    message_attributes,
    parse_alert,
    subject,
    webhook_body,
)
from webchecker.alert.notifier import NotifierSettings
from webchecker.alert.webhook import WebhookSettings
from webchecker.exceptions import ConfigurationError

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
OPENED = {
    "type": "incident.opened",
    "site_id": "example-com",
    "url": "https://example.com/",
    "tags": ["prod"],
    "error": "status",
    "status_code": 503,
    "error_detail": "expected 200-399, got 503",
    "opened_at": "2026-11-27T19:48:01.204Z",
}


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        (OPENED, "DOWN example-com: status 503"),
        (
            {**OPENED, "error": "timeout", "status_code": None, "error_detail": "after 10 s"},
            "DOWN example-com: timeout: after 10 s",
        ),
        (
            {"type": "incident.resolved", "site_id": "a", "duration_seconds": 3725},
            "UP a: back after 1h 02m",
        ),
        (
            {"type": "incident.reminder", "site_id": "a", "open_seconds": 7200, "error": "dns"},
            "STILL DOWN a for 2h 00m: dns",
        ),
        (
            {
                "type": "certificate.expiring",
                "site_id": "a",
                "certificate_expires_at": "2026-12-01T00:00:00.000Z",
            },
            "CERTIFICATE a: expires 2026-12-01",
        ),
        (
            {"type": "site.flapping", "site_id": "a", "incidents_opened": 3},
            "FLAPPING a: 3 incidents in a short time; notices held until steady",
        ),
        (
            {"type": "site.stable", "site_id": "a", "state": "up"},
            "STEADY a: no longer flapping, up",
        ),
        (
            {"type": "incidents.summary", "of": "incident.opened", "site_ids": ["a", "b"]},
            "DOWN 2 sites at once: a, b",
        ),
        ({"type": "something.new", "site_id": "a"}, "SOMETHING.NEW a"),
    ],
)
def test_subjects_say_what_happened(alert: dict[str, Any], expected: str) -> None:
    assert subject(alert) == expected


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59.9, "59s"), (60, "1m"), (3599, "59m"), (172800, "2d 00h")]
)
def test_durations(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


class TestHostileAlerts:
    """Whatever an alert holds, the subject is SNS-valid and the post is built."""

    @pytest.mark.parametrize(
        "value",
        [
            None,
            float("nan"),
            float("inf"),
            "\ud800",
            "\x00\x1b[31m\n\r\t",
            "x" * 100_000,
            ["list"],
            {"a": 1},
            True,
            -5,
        ],
    )
    @pytest.mark.parametrize(
        "name", ["type", "site_id", "error", "error_detail", "status_code", "duration_seconds"]
    )
    def test_any_value_in_any_field(self, name: str, value: object) -> None:
        alert = {**OPENED, "type": "incident.resolved", name: value}
        text = subject(alert)
        assert 0 < len(text) <= MAX_SUBJECT
        assert text.isascii()
        assert text.isprintable()
        for flavour in ("slack", "discord", "teams"):
            assert webhook_body(alert, flavour)
        attributes = message_attributes(alert)
        assert attributes["type"]["StringValue"]
        assert json.loads(attributes["tags"]["StringValue"]) == ["prod"]

    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(st.sampled_from([*OPENED, "site_ids", "of"]), VALUES))
    def test_random_alerts(self, alert: dict[str, Any]) -> None:
        text = subject(alert)
        assert 0 < len(text) <= MAX_SUBJECT
        assert text.isascii()
        assert text.isprintable()
        message_attributes(alert)

    def test_a_message_that_is_not_an_alert_becomes_a_note(self) -> None:
        assert parse_alert("plain text")["type"] == "note"
        assert parse_alert("[1, 2]")["type"] == "note"
        assert parse_alert("[" * 100_000)["type"] == "note"
        assert parse_alert(json.dumps(OPENED)) == OPENED


def test_attributes_for_filter_policies() -> None:
    assert message_attributes(OPENED) == {
        "type": {"DataType": "String", "StringValue": "incident.opened"},
        "site_id": {"DataType": "String", "StringValue": "example-com"},
        "tags": {"DataType": "String.Array", "StringValue": '["prod"]'},
    }


def test_webhook_bodies_per_channel() -> None:
    slack = webhook_body(OPENED, "slack")
    assert slack["text"] == "DOWN example-com: status 503"
    assert "*Reason:* status 503" in slack["attachments"][0]["text"]
    discord = webhook_body(OPENED, "discord")
    assert discord["embeds"][0]["color"] == 0xD62728
    teams = webhook_body(OPENED, "teams")
    assert teams["@type"] == "MessageCard"
    assert {"name": "Site", "value": "https://example.com/"} in teams["sections"][0]["facts"]
    with pytest.raises(ValueError, match="flavour"):
        webhook_body(OPENED, "irc")


def test_notifier_settings_need_a_topic_and_sane_numbers() -> None:
    base = {"DATABASE_URL": "postgresql://u@localhost/db"}
    with pytest.raises(ConfigurationError, match="ALERT_TOPIC_ARN"):
        NotifierSettings.from_env(base)
    topic = {**base, "ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:t"}
    assert NotifierSettings.from_env(topic).reminder_minutes == 0
    assert (
        NotifierSettings.from_env({**topic, "ALERT_REMINDER_MINUTES": "15"}).reminder_minutes == 15
    )
    for name, value in [
        ("ALERT_REMINDER_MINUTES", "-1"),
        ("ALERT_SUMMARY_THRESHOLD", "many"),
        ("ALERT_PUBLISH_TIMEOUT", "600"),
    ]:
        with pytest.raises(ConfigurationError, match=name):
            NotifierSettings.from_env({**topic, name: value})


def test_webhook_settings_want_exactly_one_url_source() -> None:
    with pytest.raises(ConfigurationError, match="exactly one"):
        WebhookSettings.from_env({})
    with pytest.raises(ConfigurationError, match="exactly one"):
        WebhookSettings.from_env({"WEBHOOK_URL_SECRET_ARN": "arn:x", "WEBHOOK_URL_PARAMETER": "/p"})
    with pytest.raises(ConfigurationError, match="WEBHOOK_FLAVOUR"):
        WebhookSettings.from_env({"WEBHOOK_URL_PARAMETER": "/p", "WEBHOOK_FLAVOUR": "irc"})
    assert WebhookSettings.from_env({"WEBHOOK_URL_PARAMETER": "/p"}).flavour == "slack"
