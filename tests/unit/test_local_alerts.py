"""The local alert parts without a running stack: the topic's ARN, the live view's lines."""

from __future__ import annotations

import json
from pathlib import Path

from webchecker.local.alerts import LocalAlerts, topic_arn
from webchecker.local.board import alert_lines
from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.local.functions import function_env
from webchecker.local.settings import LocalSettings


def test_the_functions_know_the_topic_moto_will_create(tmp_path: Path) -> None:
    aws = EmbeddedAws(region="eu-west-1")
    env = function_env(
        LocalSettings(state_dir=tmp_path),
        aws=aws,
        lambda_endpoint="http://127.0.0.1:1",
        bootstrap_servers="127.0.0.1:2",
        database_url="postgresql://u@localhost/db",
    )
    assert env["ALERT_TOPIC_ARN"] == topic_arn("eu-west-1")
    assert env["ALERT_TOPIC_ARN"] == LocalAlerts(aws, tmp_path).topic_arn


def test_the_live_view_lists_the_latest_alerts(tmp_path: Path) -> None:
    alerts = LocalAlerts(EmbeddedAws(), tmp_path)
    assert alert_lines(alerts) == []
    assert alert_lines(None) == []
    with alerts.path.open("w") as file:
        for minute in range(5):
            entry = {
                "alert": {"type": "incident.opened", "site_id": f"s{minute}"},
                "subject": f"DOWN s{minute}: status 500",
                "received_at": f"2026-12-02T17:0{minute}:01.000000+00:00",
            }
            file.write(json.dumps(entry) + "\n")
    lines = alert_lines(alerts, shown=2)
    assert lines[0] == f"alerts sent: 5 (all in {alerts.path})"
    assert lines[1:] == ["  17:03:01  DOWN s3: status 500", "  17:04:01  DOWN s4: status 500"]
